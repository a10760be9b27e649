internal import Configuration
import Foundation

/// The settings of one run of `gateway serve` or `gateway core`, resolved from, highest first:
/// flags, environment variables (`CS_…`), the settings file (`--config FILE`, JSON), and the
/// defaults of `Setting.all`.
///
/// The file is read with swift-configuration's `JSONSnapshot` and the environment with its
/// `EnvironmentVariablesProvider` (both do the typed conversion: `"8090"` from the environment
/// is an integer, `8090` in the file is not a string). JSON rather than YAML: the JSON provider
/// is swift-configuration's default trait and needs nothing beyond Foundation, while YAML
/// would bring Yams and its C parser into every build.
///
/// The layers are asked one by one here rather than through one `ConfigReader`: a reader's
/// `int(forKey:default:)` answers the default when a value does not convert, silently, and
/// would not say which layer held it. Here a value that does not convert, or that its check
/// refuses, is a `SettingsError` naming the key, where it came from and what is allowed; so is
/// a key in the file that is not in the table (swift-configuration reads only the keys it is
/// asked for, so a misspelt key would otherwise be ignored without a word).
public struct Settings: Sendable {
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        case flag(String)
        case environment(String)
        case file(String)
        case defaultValue

        public var description: String {
            switch self {
            case .flag(let flag): return "flag \(flag)"
            case .environment(let name): return "environment variable \(name)"
            case .file(let path): return "file \(path)"
            case .defaultValue: return "default"
            }
        }
    }

    public let command: Setting.Command
    /// Every setting with a value (optional ones left unset are absent).
    public private(set) var values: [String: SettingValue]
    public private(set) var sources: [String: Source]
    /// The settings file, when one was given.
    public let file: String?

    // MARK: reading

    public func value(_ key: String) -> SettingValue? {
        precondition(Setting.byKey[key] != nil, "no setting \(key) in Setting.all")
        return values[key]
    }

    public func string(_ key: String) -> String {
        guard case .string(let s) = value(key) else { preconditionFailure("\(key) is not a string with a default") }
        return s
    }

    public func optionalString(_ key: String) -> String? {
        guard case .string(let s) = value(key) else { return nil }
        return s
    }

    public func int(_ key: String) -> Int {
        guard case .int(let i) = value(key) else { preconditionFailure("\(key) is not an integer with a default") }
        return i
    }

    public func optionalInt(_ key: String) -> Int? {
        guard case .int(let i) = value(key) else { return nil }
        return i
    }

    public func bool(_ key: String) -> Bool {
        guard case .bool(let b) = value(key) else { preconditionFailure("\(key) is not a bool") }
        return b
    }

    public func strings(_ key: String) -> [String] {
        guard case .strings(let list) = value(key) else { preconditionFailure("\(key) is not a list") }
        return list
    }

    /// "gateway.tls-cert (flag --tls-cert)": how a message names a setting, with where its
    /// value came from.
    public func name(_ key: String) -> String {
        let source = sources[key] ?? .defaultValue
        return source == .defaultValue ? key : "\(key) (\(source))"
    }

    // MARK: resolving

    /// Resolves every setting of `command`. Throws a `SettingsError` with every problem found
    /// (not only the first): unknown flags, unknown keys in the file, values of the wrong type
    /// or refused by their check, and combinations that do not go together.
    public static func resolve(command: Setting.Command, arguments: [String],
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws(SettingsError) -> Settings {
        var problems: [String] = []
        let flags = FlagLayer(command: command, arguments: arguments, problems: &problems)
        var file: FileLayer?
        if let path = flags.configFile {
            do {
                file = try FileLayer(path: path)
            } catch {
                problems.append(contentsOf: error.problems)
            }
        }
        let environmentLayer = EnvironmentLayer(environment)
        var settings = Settings(command: command, values: [:], sources: [:], file: flags.configFile)
        for setting in Setting.all {
            settings.resolve(setting, layers: [flags, environmentLayer] + (file.map { [$0] } ?? []), problems: &problems)
        }
        if problems.isEmpty { settings.crossCheck(&problems) }
        guard problems.isEmpty else { throw SettingsError(problems) }
        return settings
    }

    /// Checks one settings file alone (`gateway config check FILE`): its keys, its values,
    /// and the combinations, as `serve` and `core` would; no environment, no flags.
    public static func check(file path: String) throws(SettingsError) -> Settings {
        try resolve(command: .serve, arguments: ["--config", path], environment: [:])
    }

    private mutating func resolve(_ setting: Setting, layers: [any SettingsLayer], problems: inout [String]) {
        for layer in layers {
            let found: (value: SettingValue, source: Source)?
            do {
                found = try layer.lookup(setting)
            } catch {
                problems.append(error.message(for: setting))
                return
            }
            guard let found else { continue }
            if let problem = setting.check.problem(found.value) {
                let shown = setting.isSecret ? "(secret)" : Settings.redactingPasswords(found.value.description)
                problems.append(Settings.redactingPasswords(
                    "\(setting.key) (\(found.source)): \(shown) is not allowed (\(problem)); allowed: \(setting.check.allowed)"))
                return
            }
            values[setting.key] = found.value
            sources[setting.key] = found.source
            return
        }
        if let value = setting.defaultValue {
            values[setting.key] = value
            sources[setting.key] = .defaultValue
        }
    }

    /// `postgres://user:***@host/db` for `postgres://user:pw@host/db`: a value echoed in a
    /// message never carries a URL's password (a store URL must not hold one, so the refusal
    /// of one must not print it).
    static func redactingPasswords(_ text: String) -> String {
        var out = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            out += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" || $0 == "'" || $0 == "\"" } ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                out += rest[...colon] + "***"
                rest = rest[at...]
            }
        }
        return out + rest
    }

    /// Settings that are fine alone but not together.
    private func crossCheck(_ problems: inout [String]) {
        if (optionalString("gateway.tls-cert") == nil) != (optionalString("gateway.tls-key") == nil) {
            problems.append("\(name("gateway.tls-cert")) and \(name("gateway.tls-key")) go together: set both (TLS) or neither (cleartext)")
        }
        let message = int("gateway.max-message-bytes")
        let perConnection = int("gateway.max-buffered-request-bytes-per-connection")
        if perConnection < message + 5 + 65_535 {
            problems.append("\(name("gateway.max-buffered-request-bytes-per-connection")): \(perConnection) must hold one whole message "
                + "of \(name("gateway.max-message-bytes")) and 64 KiB more: at least \(message + 5 + 65_535)")
        }
        if optionalString("store.url") != nil && bool("store.memory") {
            problems.append("\(name("store.url")) and \(name("store.memory")) go alone: choose one store")
        }
    }
}

/// Every problem of a start-up's settings, one per line, each naming its key.
public struct SettingsError: Error, CustomStringConvertible {
    public var problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String {
        (problems.count == 1 ? "invalid setting: " : "invalid settings:\n  ") + problems.joined(separator: "\n  ")
    }
}

// MARK: layers

/// A value of the wrong type in some layer.
struct LayerError: Error {
    var source: Settings.Source
    var raw: String?

    func message(for setting: Setting) -> String {
        let shown = setting.isSecret ? "" : raw.map { " " + Settings.redactingPasswords($0) } ?? ""
        var expected = "a \(setting.kindText)"
        switch setting.kind {
        case .int: expected = "an integer" + (setting.unit.isEmpty ? "" : " (\(setting.unit))")
        case .bool: expected = "true or false"
        case .strings: expected = source.isEnvironment ? "a comma-separated list" : "a list of strings"
        case .choice(let values): expected = "one of " + values.joined(separator: ", ")
        case .string: expected = "a string" + (setting.unit.isEmpty ? "" : " (\(setting.unit))")
        }
        return "\(setting.key) (\(source)):\(shown) is not \(expected)"
    }
}

extension Settings.Source {
    var isEnvironment: Bool {
        if case .environment = self { return true }
        return false
    }
}

protocol SettingsLayer {
    /// The value this layer holds for `setting`, nil when it holds none; throws when it holds
    /// one of the wrong type.
    func lookup(_ setting: Setting) throws(LayerError) -> (value: SettingValue, source: Settings.Source)?
}

extension Setting.Kind {
    var configType: ConfigType {
        switch self {
        case .string, .choice: return .string
        case .int: return .int
        case .bool: return .bool
        case .strings: return .stringArray
        }
    }
}

extension SettingValue {
    /// A swift-configuration value as a setting's value; nil when it is not of `kind`.
    init?(_ content: ConfigContent, kind: Setting.Kind) {
        switch (content, kind) {
        case (.string(let s), .string): self = .string(s)
        case (.string(let s), .choice(let allowed)):
            guard allowed.contains(s) else { return nil }
            self = .string(s)
        case (.int(let i), .int): self = .int(i)
        case (.bool(let b), .bool): self = .bool(b)
        case (.stringArray(let list), .strings): self = .strings(list)
        default: return nil
        }
    }
}

/// The environment, through swift-configuration's provider: `CS_GATEWAY_LISTEN` for
/// `gateway.listen` (keys prefixed with `cs`, then its key encoding).
struct EnvironmentLayer: SettingsLayer {
    let raw: [String: String]
    let provider: KeyMappingProvider<EnvironmentVariablesProvider>

    init(_ environment: [String: String]) {
        raw = environment
        provider = EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "cs")
    }

    func lookup(_ setting: Setting) throws(LayerError) -> (value: SettingValue, source: Settings.Source)? {
        let name = setting.environmentVariable
        let source = Settings.Source.environment(name)
        // An empty variable is as if unset (systemd environment files often hold `NAME=`).
        guard let text = raw[name], !text.isEmpty else { return nil }
        let result: LookupResult
        do {
            result = try provider.value(forKey: AbsoluteConfigKey(ConfigKey(setting.key)), type: setting.kind.configType)
        } catch {
            throw LayerError(source: source, raw: "'\(text)'")
        }
        guard let content = result.value?.content else { return nil }
        guard let value = SettingValue(content, kind: setting.kind) else {
            throw LayerError(source: source, raw: "'\(text)'")
        }
        // An empty list from an empty variable: "set to nothing".
        if case .strings(let list) = value { return (.strings(list.filter { !$0.isEmpty }), source) }
        return (value, source)
    }
}

/// The settings file: JSON, one object per section (`{"gateway": {"listen": "…"}}`), read by
/// swift-configuration's `JSONSnapshot`. Its keys are checked against the table first.
struct FileLayer: SettingsLayer {
    let path: String
    let snapshot: JSONSnapshot
    /// The file's values as JSON text, for messages.
    let raw: [String: String]

    struct Problems: Error { var problems: [String] }

    init(path: String) throws(Problems) {
        self.path = path
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw Problems(problems: ["settings file \(path): cannot be read (\(Self.plain(error))); check the path given to --config"])
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw Problems(problems: ["settings file \(path): not valid JSON (\(Self.plain(error)))"])
        }
        guard let top = object as? [String: Any] else {
            throw Problems(problems: ["settings file \(path): the top level must be a JSON object of sections, e.g. {\"gateway\": {\"listen\": \"0.0.0.0:50051\"}}"])
        }
        var raw: [String: String] = [:]
        var problems: [String] = []
        Self.flatten(top, prefix: [], into: &raw, problems: &problems, path: path)
        for key in raw.keys.sorted() where Setting.byKey[key] == nil {
            problems.append("\(key) (file \(path)): unknown key" + (Self.suggestion(for: key).map { "; did you mean \($0)?" } ?? "")
                + " (every key: gateway/gateway.example.json)")
        }
        guard problems.isEmpty else { throw Problems(problems: problems) }
        do {
            let bytes = [UInt8](data)
            snapshot = try JSONSnapshot(data: bytes.span.bytes, providerName: "file \(path)", parsingOptions: .default)
        } catch {
            throw Problems(problems: ["settings file \(path): \(error)"])
        }
        self.raw = raw
    }

    func lookup(_ setting: Setting) throws(LayerError) -> (value: SettingValue, source: Settings.Source)? {
        let source = Settings.Source.file(path)
        let result: LookupResult
        do {
            result = try snapshot.value(forKey: AbsoluteConfigKey(ConfigKey(setting.key)), type: setting.kind.configType)
        } catch {
            throw LayerError(source: source, raw: raw[setting.key])
        }
        guard let content = result.value?.content else { return nil }
        // JSONSnapshot reads numbers as bools and bools as numbers (1 is true, true is 1):
        // the file's own spelling decides here, so `"max-body": true` is refused.
        if let text = raw[setting.key] {
            let isBool = text == "true" || text == "false"
            if (setting.kind == .bool) != isBool || (setting.kind == .int && text.contains(".")) {
                throw LayerError(source: source, raw: text)
            }
        }
        guard let value = SettingValue(content, kind: setting.kind) else { throw LayerError(source: source, raw: raw[setting.key]) }
        return (value, source)
    }

    /// Leaf keys, dot-joined, with their JSON text; `null` leaves are listed too (they mean
    /// "unset" but must still be known keys).
    private static func flatten(_ object: [String: Any], prefix: [String], into raw: inout [String: String],
                                problems: inout [String], path: String) {
        for (name, value) in object {
            let key = (prefix + [name]).joined(separator: ".")
            if let nested = value as? [String: Any] {
                if Setting.byKey[key] != nil {
                    problems.append("\(key) (file \(path)): an object is not allowed here; allowed: \(Setting.byKey[key]!.kindText)")
                } else {
                    flatten(nested, prefix: prefix + [name], into: &raw, problems: &problems, path: path)
                }
            } else {
                raw[key] = jsonText(value)
            }
        }
    }

    private static func jsonText(_ value: Any) -> String {
        if value is NSNull { return "null" }
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]),
           let text = String(data: data, encoding: .utf8) {
            return text
        }
        return "\(value)"
    }

    /// The known key nearest to a misspelt one (same section or same last part).
    static func suggestion(for key: String) -> String? {
        let last = key.split(separator: ".").last.map(String.init) ?? key
        if let same = Setting.all.first(where: { $0.key.hasSuffix("." + last) }) { return same.key }
        let section = key.split(separator: ".").first.map(String.init) ?? ""
        let candidates = Setting.all.filter { $0.key.hasPrefix(section + ".") }
        return candidates.min { editDistance($0.key, key) < editDistance($1.key, key) }
            .flatMap { editDistance($0.key, key) <= 4 ? $0.key : nil }
    }

    /// Levenshtein distance, one row at a time.
    private static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in 1...b.count {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    /// Foundation's errors in words: "The file “x” couldn’t be opened because there is no
    /// such file." rather than `Error Domain=NSCocoaErrorDomain Code=260 …`.
    static func plain(_ error: any Error) -> String {
        let ns = error as NSError
        if let debug = ns.userInfo["NSDebugDescription"] as? String { return debug }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return ns.localizedDescription
    }
}

/// The flags of one command, by the table; `--config FILE` names the settings file.
struct FlagLayer: SettingsLayer {
    var values: [String: (value: SettingValue, source: Settings.Source)] = [:]
    var configFile: String?

    init(command: Setting.Command, arguments: [String], problems: inout [String]) {
        let known = Setting.flags(of: command)
        var lists: [String: [String]] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                problems.append("unexpected argument '\(argument)' for gateway \(command.rawValue): settings are flags (--name value) or keys of the --config file")
                continue
            }
            var name = argument
            var inline: String?
            if let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            func takeValue() -> String? {
                if let inline { return inline }
                guard index < arguments.count else {
                    problems.append("\(name) needs a value")
                    return nil
                }
                index += 1
                return arguments[index - 1]
            }
            if name == "--config" {
                configFile = takeValue()
                continue
            }
            guard let setting = known[name] else {
                problems.append("unknown option \(name) for gateway \(command.rawValue) (gateway \(command.rawValue) --help lists them)")
                continue
            }
            let source = Settings.Source.flag(name)
            if case .sets(let value) = setting.flagForm {
                if inline != nil { problems.append("\(name) takes no value") }
                values[setting.key] = (.bool(value), source)
                continue
            }
            guard let text = takeValue() else { continue }
            switch setting.kind {
            case .string:
                values[setting.key] = (.string(text), source)
            case .choice(let allowed):
                guard allowed.contains(text) else {
                    problems.append(LayerError(source: source, raw: "'\(text)'").message(for: setting))
                    continue
                }
                values[setting.key] = (.string(text), source)
            case .int:
                guard let int = Int(text) else {
                    problems.append(LayerError(source: source, raw: "'\(text)'").message(for: setting))
                    continue
                }
                values[setting.key] = (.int(int), source)
            case .bool:
                guard let bool = Bool(text) else {
                    problems.append(LayerError(source: source, raw: "'\(text)'").message(for: setting))
                    continue
                }
                values[setting.key] = (.bool(bool), source)
            case .strings:
                // Repeated flags add up; each may hold several, comma-separated.
                lists[setting.key, default: []] += text.split(separator: ",").map(String.init)
                values[setting.key] = (.strings(lists[setting.key]!), source)
            }
        }
    }

    func lookup(_ setting: Setting) throws(LayerError) -> (value: SettingValue, source: Settings.Source)? {
        values[setting.key]
    }
}
