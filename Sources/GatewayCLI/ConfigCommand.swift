import ArgumentParser
import GatewaySettings

/// `gateway config`: the settings file without starting anything.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Check a settings file, or print the example file or the table of every key.",
        subcommands: [Check.self, Example.self, Keys.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a settings file as `serve` and `core` read it (keys, types, allowed values, combinations); start nothing.",
            discussion: "Exit status 0 when the file is valid; otherwise 1, with one line per problem naming its key. The environment and flags are not read."
        )

        @Argument(help: "The settings file (JSON).")
        var file: String

        func run() throws {
            do {
                let settings = try Settings.check(file: file)
                let set = settings.sources.values.filter { if case .file = $0 { return true } else { return false } }.count
                print("\(file): valid (\(set) of \(Setting.all.count) keys set; the others keep their defaults)")
            } catch {
                print("\(file): \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct Example: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a settings file with every key at its default (gateway/gateway.example.json).")

        func run() { print(SettingsDocument.exampleJSON(), terminator: "") }
    }

    struct Keys: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the table of every key: type, default, unit, flag, environment variable (gateway/configuration.md).")

        func run() { print(SettingsDocument.markdown(), terminator: "") }
    }
}
