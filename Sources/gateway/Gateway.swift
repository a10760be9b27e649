import ArgumentParser

@main
struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "A binary gateway and task core for the Genesys Context Services task API.",
        subcommands: [CoreCommand.self],
        // Until the binary front end lands, running the executable bare starts the core.
        defaultSubcommand: CoreCommand.self
    )
}
