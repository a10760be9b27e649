import Foundation

/// One setting of `gateway serve` or `gateway core`: its key in the settings file, its type,
/// its default (stated here once: the file, the environment and the flags only override it),
/// its unit, what it means, what it allows and the flag that sets it. The environment
/// variable is derived from the key (`CS_` + the key in capitals, `.` and `-` as `_`), as
/// swift-configuration's `EnvironmentVariablesProvider` spells keys, so it is never written
/// twice either.
///
/// Every setting lives in `Setting.all` (SettingsTable.swift); adding one is one entry there
/// plus the line that reads it (`settings.int("metrics.port")`).
public struct Setting: Sendable {
    public enum Kind: Sendable, Equatable {
        case string
        case int
        case bool
        /// A list: a JSON array of strings in the file, comma-separated in the environment,
        /// and a flag that may be repeated (each occurrence may hold several, comma-separated).
        case strings
        /// One of these strings.
        case choice([String])
    }

    /// The commands that take a setting as a flag. Every key is valid in the file whatever the
    /// command (one file holds both): a key of the other command is simply not read.
    public enum Command: String, Sendable, CaseIterable {
        case serve, core
    }

    /// How a flag sets its setting.
    public enum FlagForm: Sendable, Equatable {
        /// `--name VALUE` or `--name=VALUE`.
        case value
        /// `--name` alone sets a bool setting to this.
        case sets(Bool)
    }

    public let key: String
    public let kind: Kind
    /// nil: unset unless given (an optional setting: `defaultText` says what unset means).
    public let defaultValue: SettingValue?
    /// What unset means, for optional settings (e.g. "one per CPU core").
    public let unsetMeaning: String?
    /// The unit of a number, or the shape of a string ("host:port", "path"); "" when none.
    public let unit: String
    public let help: String
    /// The flag per command that takes it; a command missing here does not take it as a flag.
    public let flags: [Command: String]
    public let flagForm: FlagForm
    public let check: Check
    /// Never echoed in messages (bearer tokens).
    public let isSecret: Bool

    public init(_ key: String, _ kind: Kind, default defaultValue: SettingValue?, unset: String? = nil, unit: String = "",
                flag: String, for commands: [Command], coreFlag: String? = nil, form: FlagForm = .value,
                check: Check = .any, secret: Bool = false, help: String) {
        self.key = key
        self.kind = kind
        self.defaultValue = defaultValue
        self.unsetMeaning = unset
        self.unit = unit
        self.help = help
        var flags: [Command: String] = [:]
        for command in commands { flags[command] = command == .core ? (coreFlag ?? flag) : flag }
        self.flags = flags
        self.flagForm = form
        self.check = check
        self.isSecret = secret
    }

    /// `CS_GATEWAY_MAX_MESSAGE_BYTES` for `gateway.max-message-bytes`: what
    /// `EnvironmentVariablesProvider` looks up for the key prefixed with `cs`.
    public var environmentVariable: String {
        "CS_" + key.uppercased().map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
    }

    /// The default as the example file and the help print it.
    public var defaultText: String {
        if let defaultValue { return defaultValue.jsonText }
        return "null (\(unsetMeaning ?? "unset"))"
    }

    public var kindText: String {
        switch kind {
        case .string: return "string"
        case .int: return "integer"
        case .bool: return "boolean"
        case .strings: return "list of strings"
        case .choice(let values): return values.joined(separator: "|")
        }
    }
}

/// A setting's value, typed by its `Setting.Kind`.
public enum SettingValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case bool(Bool)
    case strings([String])

    /// The value as JSON text (the example file).
    public var jsonText: String {
        switch self {
        case .string(let s): return Self.quote(s)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let list): return "[" + list.map(Self.quote).joined(separator: ", ") + "]"
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let list): return "[" + list.map { "'\($0)'" }.joined(separator: ", ") + "]"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// What a setting allows: `allowed` says it in words (messages and the key table), `accepts`
/// decides. nil from `problem` means fine.
public struct Check: Sendable {
    public let allowed: String
    private let accepts: @Sendable (SettingValue) -> String?

    public init(_ allowed: String, _ problem: @escaping @Sendable (SettingValue) -> String?) {
        self.allowed = allowed
        self.accepts = problem
    }

    /// nil when the value is allowed; else why not (the message adds the key and `allowed`).
    public func problem(_ value: SettingValue) -> String? { accepts(value) }

    public static let any = Check("") { _ in nil }

    public static func atLeast(_ minimum: Int) -> Check {
        Check("an integer ≥ \(minimum)") { v in
            guard case .int(let i) = v, i >= minimum else { return "too small" }
            return nil
        }
    }

    public static let positive = atLeast(1)

    public static func range(_ range: ClosedRange<Int>) -> Check {
        Check("an integer from \(range.lowerBound) to \(range.upperBound)") { v in
            guard case .int(let i) = v, range.contains(i) else { return "out of range" }
            return nil
        }
    }

    public static let hostPort = Check("host:port, e.g. 127.0.0.1:8090 or [::1]:8090 (port 0 to 65535; 0 picks a free one)") { v in
        guard case .string(let s) = v, HostPort(s) != nil else { return "not host:port" }
        return nil
    }

    public static let hostPorts = Check("a list of host:port, e.g. [\"core-a:8090\", \"core-b:8090\"]") { v in
        guard case .strings(let list) = v else { return "not a list" }
        if let bad = list.first(where: { HostPort($0) == nil }) { return "'\(bad)' is not host:port" }
        return nil
    }

    public static let absolutePath = Check("a path starting with /") { v in
        guard case .string(let s) = v, s.hasPrefix("/") else { return "does not start with /" }
        return nil
    }

    public static let nonEmpty = Check("a non-empty string") { v in
        guard case .string(let s) = v, !s.isEmpty else { return "empty" }
        return nil
    }
}

/// `host:port`, `[v6]:port`.
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
