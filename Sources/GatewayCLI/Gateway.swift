import ArgumentParser

@main
struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "A binary gateway and task core for the Genesys Context Services task API.",
        subcommands: [ServeCommand.self, CoreCommand.self, LoadCommand.self, ConfigCommand.self],
        // Bare `gateway` runs the whole system: the gRPC front end and an embedded core.
        defaultSubcommand: ServeCommand.self
    )
}
