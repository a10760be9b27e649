import Foundation
import GatewaySettings
import Testing

/// The settings table against real files and a real environment map: the example file, every
/// key's refusals, unknown keys, and the order of the layers.
@Suite("Settings")
struct SettingsTableTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let examplePath = root.appendingPathComponent("gateway/gateway.example.json").path
    static let keysPath = root.appendingPathComponent("gateway/configuration.md").path

    /// A settings file of its own in a temporary folder.
    static func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("cs-settings-\(UUID().uuidString).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `{"section": {"name": value}}` for a key `section.name`.
    static func json(_ key: String, _ value: String) -> String {
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        return "{\"\(parts[0])\": {\"\(parts[1])\": \(value)}}"
    }

    static func problems(_ body: () throws(SettingsError) -> Settings) -> [String] {
        do {
            _ = try body()
            return []
        } catch {
            return error.problems
        }
    }

    // MARK: the example file

    @Test("The example file parses and sets every key of the table, each to its default")
    func exampleHasEveryKey() throws {
        let settings = try Settings.check(file: Self.examplePath)
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.examplePath))
        let top = try #require(JSONSerialization.jsonObject(with: data) as? [String: [String: Any]])
        let keys = Set(top.flatMap { section, values in values.keys.map { "\(section).\($0)" } })
        #expect(keys == Set(Setting.all.map(\.key)))
        for setting in Setting.all {
            #expect(settings.value(setting.key) == setting.defaultValue, "\(setting.key)")
            if setting.defaultValue != nil {
                #expect(settings.sources[setting.key] == .file(Self.examplePath), "\(setting.key)")
            }
        }
    }

    @Test("The example file and the key table are what the table generates (gateway/scripts/gen-config-docs.sh)")
    func generatedFilesAreCurrent() throws {
        #expect(try String(contentsOfFile: Self.examplePath, encoding: .utf8) == SettingsDocument.exampleJSON())
        #expect(try String(contentsOfFile: Self.keysPath, encoding: .utf8) == SettingsDocument.markdown())
    }

    @Test("Every key has help, a flag and an environment variable of its own")
    func everyKeyIsDocumented() {
        #expect(Set(Setting.all.map(\.key)).count == Setting.all.count)
        #expect(Set(Setting.all.map(\.environmentVariable)).count == Setting.all.count)
        for command in Setting.Command.allCases {
            let flags = Setting.all.compactMap { $0.flags[command] }
            #expect(Set(flags).count == flags.count, "a flag of \(command) names two settings")
        }
        for setting in Setting.all {
            #expect(!setting.help.isEmpty && !setting.flags.isEmpty, "\(setting.key)")
            #expect(setting.environmentVariable != "CS_STORE_PASSWORD", "the password never has a key")
        }
    }

    @Test("The settings files of gateway/deploy pass the check")
    func deployFiles() throws {
        let folder = Self.root.appendingPathComponent("gateway/deploy")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }
        #expect(files.count == 3)
        for name in files {
            #expect(Self.problems { () throws(SettingsError) in try Settings.check(file: folder.appendingPathComponent(name).path) } == [], "\(name)")
        }
    }

    // MARK: refusals, key by key

    /// A value of the wrong type for a setting, as JSON.
    static func wrongType(_ setting: Setting) -> String {
        switch setting.kind {
        case .int: return "\"12ab\""
        case .string, .choice: return "5"
        case .bool: return "\"maybe\""
        case .strings: return "7"
        }
    }

    /// A value of the right type that the setting's check refuses, as JSON; nil when it takes any.
    static func refused(_ setting: Setting) -> String? {
        if case .choice = setting.kind { return "\"no-such-choice\"" }
        if setting.kind == .int { return setting.check.allowed.isEmpty ? nil : "-1" }
        switch setting.check.allowed {
        case Check.hostPort.allowed: return "\"no-port\""
        case Check.hostPorts.allowed: return "[\"no-port\"]"
        case Check.absolutePath.allowed: return "\"relative\""
        case Check.nonEmpty.allowed: return "\"\""
        case Check.postgresURL.allowed: return "\"mysql://u@h/db\""
        default: return nil
        }
    }

    @Test("A value of the wrong type in the file is refused, naming the key and what it allows", arguments: Setting.all.map(\.key))
    func wrongTypeInFile(key: String) throws {
        let setting = Setting.byKey[key]!
        let path = try Self.file(Self.json(key, Self.wrongType(setting)))
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("\(key) (file \(path)):") == true, "\(problems)")
        #expect(problems.first?.contains("is not") == true, "\(problems)")
    }

    @Test("A value its check refuses is refused, naming the key and what is allowed",
          arguments: Setting.all.filter { refused($0) != nil }.map(\.key))
    func refusedValueInFile(key: String) throws {
        let setting = Setting.byKey[key]!
        let path = try Self.file(Self.json(key, Self.refused(setting)!))
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("\(key) (file \(path)):") == true, "\(problems)")
        if case .choice(let values) = setting.kind {
            #expect(problems.first?.contains(values.joined(separator: ", ")) == true, "\(problems)")
        } else {
            #expect(problems.first?.contains("allowed: \(setting.check.allowed)") == true, "\(problems)")
        }
    }

    @Test("A value of the wrong type in the environment is refused, naming the key and the variable",
          arguments: Setting.all.filter { $0.kind != .string && $0.kind != .strings }.map(\.key))
    func wrongTypeInEnvironment(key: String) {
        let setting = Setting.byKey[key]!
        let problems = Self.problems { () throws(SettingsError) in
            try Settings.resolve(command: .serve, arguments: [], environment: [setting.environmentVariable: "12ab"])
        }
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("\(key) (environment variable \(setting.environmentVariable)):") == true, "\(problems)")
    }

    @Test("An unknown key is refused, naming it", arguments: [
        (#"{"gateway": {"listn": "127.0.0.1:1"}}"#, "gateway.listn", "gateway.listen"),
        (#"{"tracing": {"exporter": "otlp"}}"#, "tracing.exporter", nil),  // a section that does not exist
        (#"{"listen": "127.0.0.1:1"}"#, "listen", nil),
        (#"{"store": {"url": null, "pasword-file": "/x"}}"#, "store.pasword-file", "store.password-file"),
        (#"{"core": {"listen": {"host": "x"}}}"#, "core.listen", nil),
    ] as [(String, String, String?)])
    func unknownKey(json: String, key: String, suggestion: String?) throws {
        let path = try Self.file(json)
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.hasPrefix("\(key) (file \(path)):") == true, "\(problems)")
        if let suggestion { #expect(problems.first?.contains("did you mean \(suggestion)?") == true, "\(problems)") }
    }

    @Test("Every unknown key of the sections is refused", arguments: Set(Setting.all.map { String($0.key.split(separator: ".")[0]) }).sorted())
    func unknownKeyInEverySection(section: String) throws {
        let path = try Self.file("{\"\(section)\": {\"no-such-key\": 1}}")
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.first?.hasPrefix("\(section).no-such-key (file \(path)): unknown key") == true, "\(problems)")
    }

    @Test("A file that is not JSON, or missing, is refused in plain words")
    func badFiles() throws {
        let broken = try Self.file("{\"gateway\": {\"listen\": }")
        #expect(Self.problems { () throws(SettingsError) in try Settings.check(file: broken) }.first?.contains("not valid JSON") == true)
        let missing = "/nonexistent/cs.json"
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: missing) }
        #expect(problems.first?.contains("cannot be read") == true, "\(problems)")
        #expect(problems.first?.contains("NSCocoaErrorDomain") == false, "\(problems)")
    }

    @Test("Settings that do not go together are refused, naming both")
    func combinations() throws {
        let path = try Self.file(#"{"gateway": {"tls-cert": "/etc/cert.pem"}, "store": {"url": "postgres://u@h/db", "memory": true}}"#)
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.contains { $0.contains("gateway.tls-cert") && $0.contains("gateway.tls-key") }, "\(problems)")
        #expect(problems.contains { $0.contains("store.url") && $0.contains("store.memory") }, "\(problems)")
    }

    // MARK: precedence

    @Test("Flags win over the environment, which wins over the file, which wins over the default")
    func precedence() throws {
        let path = try Self.file(#"{"gateway": {"listen": "127.0.0.1:1001", "cors-origins": ["https://file"]}, "batcher": {"max-items": 11}}"#)
        let environment = ["CS_GATEWAY_LISTEN": "127.0.0.1:1002", "CS_BATCHER_MAX_ITEMS": "12", "CS_CORE_MAX_BODY": "4096"]
        func resolve(_ arguments: [String], _ environment: [String: String]) throws -> Settings {
            try Settings.resolve(command: .serve, arguments: arguments, environment: environment)
        }
        let all = try resolve(["--config", path, "--listen", "127.0.0.1:1003"], environment)
        #expect(all.string("gateway.listen") == "127.0.0.1:1003")
        #expect(all.sources["gateway.listen"] == .flag("--listen"))
        #expect(all.int("batcher.max-items") == 12)
        #expect(all.sources["batcher.max-items"] == .environment("CS_BATCHER_MAX_ITEMS"))
        #expect(all.int("core.max-body") == 4096)
        #expect(all.strings("gateway.cors-origins") == ["https://file"])
        #expect(all.sources["gateway.cors-origins"] == .file(path))
        #expect(all.int("batcher.max-queued") == Setting.byKey["batcher.max-queued"]!.defaultValue.map { if case .int(let i) = $0 { i } else { 0 } })
        #expect(all.sources["batcher.max-queued"] == .defaultValue)

        let noFlag = try resolve(["--config", path], environment)
        #expect(noFlag.string("gateway.listen") == "127.0.0.1:1002")
        let fileOnly = try resolve(["--config", path], [:])
        #expect(fileOnly.string("gateway.listen") == "127.0.0.1:1001")
        #expect(fileOnly.int("batcher.max-items") == 11)
        let none = try resolve([], [:])
        #expect(none.string("gateway.listen") == "127.0.0.1:50051")
    }

    @Test("Flags: value forms, repeated lists, presence flags, the core's own spelling")
    func flags() throws {
        let serve = try Settings.resolve(command: .serve, arguments: [
            "--upstream", "a:1,b:2", "--cors-origin", "https://x", "--cors-origin=https://y", "--no-batching", "--memory",
            "--core-listen", "127.0.0.1:9", "--threads=3", "--synchronous", "normal",
        ], environment: [:])
        #expect(serve.strings("gateway.upstream") == ["a:1", "b:2"])
        #expect(serve.strings("gateway.cors-origins") == ["https://x", "https://y"])
        #expect(serve.bool("batcher.enabled") == false)
        #expect(serve.bool("store.memory") == true)
        #expect(serve.string("core.listen") == "127.0.0.1:9")
        #expect(serve.optionalInt("process.threads") == 3)
        #expect(serve.string("store.sqlite-synchronous") == "normal")
        let core = try Settings.resolve(command: .core, arguments: ["--listen", "127.0.0.1:7"], environment: [:])
        #expect(core.string("core.listen") == "127.0.0.1:7")

        let problems = Self.problems { () throws(SettingsError) in
            try Settings.resolve(command: .core, arguments: ["--upstream", "a:1", "--max-body", "big", "stray", "--threads"], environment: [:])
        }
        #expect(problems.contains { $0.hasPrefix("unknown option --upstream for gateway core") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("core.max-body (flag --max-body): 'big' is not an integer") }, "\(problems)")
        #expect(problems.contains { $0.contains("unexpected argument 'stray'") }, "\(problems)")
        #expect(problems.contains { $0 == "--threads needs a value" }, "\(problems)")
    }

    @Test("Secrets are never echoed")
    func secrets() throws {
        let url = try Self.file(#"{"store": {"url": "postgres://u:pa55word@db:5432/x"}}"#)
        let refusal = Self.problems { () throws(SettingsError) in try Settings.check(file: url) }
        #expect(refusal.count == 1 && refusal[0].contains("postgres://u:***@db:5432/x"), "\(refusal)")
        #expect(!refusal.joined().contains("pa55word"), "\(refusal)")

        let path = try Self.file(#"{"core": {"auth-tokens": "s3cret-token"}}"#)
        let problems = Self.problems { () throws(SettingsError) in try Settings.check(file: path) }
        #expect(problems.count == 1 && problems[0].hasPrefix("core.auth-tokens"), "\(problems)")
        #expect(!problems[0].contains("s3cret"), "\(problems)")
    }
}
