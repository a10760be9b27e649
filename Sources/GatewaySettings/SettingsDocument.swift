import Foundation

/// What is generated from `Setting.all`: the example file, the key table of
/// `gateway/configuration.md` and the flag list of `--help`. `gateway/scripts/gen-config-docs.sh`
/// writes the two files; `SettingsTableTests` fails when they are stale.
public enum SettingsDocument {
    /// `gateway/gateway.example.json`: every key at its default, by section; optional
    /// settings as `null` (unset). JSON has no comments: units and meanings are in
    /// `configuration.md`, and every key that holds a time or a size says its unit in its name.
    public static func exampleJSON() -> String {
        var sections: [(name: String, settings: [Setting])] = []
        for setting in Setting.all {
            let section = String(setting.key.split(separator: ".")[0])
            if sections.last?.name == section {
                sections[sections.count - 1].settings.append(setting)
            } else {
                sections.append((section, [setting]))
            }
        }
        var out = "{\n"
        for (i, section) in sections.enumerated() {
            out += "  \(SettingValue.quote(section.name)): {\n"
            for (j, setting) in section.settings.enumerated() {
                let name = String(setting.key.dropFirst(section.name.count + 1))
                let value = setting.defaultValue?.jsonText ?? "null"
                out += "    \(SettingValue.quote(name)): \(value)\(j == section.settings.count - 1 ? "" : ",")\n"
            }
            out += "  }\(i == sections.count - 1 ? "" : ",")\n"
        }
        return out + "}\n"
    }

    /// The table of `gateway/configuration.md`.
    public static func markdown() -> String {
        var out = """
            # Settings of `gateway serve` and `gateway core`

            Generated from `Sources/GatewaySettings/SettingsTable.swift` by `gateway/scripts/gen-config-docs.sh`;
            do not edit. README, "Configuration", says how the file, the environment and the flags combine.

            | key | type | default | unit | flag (`serve` / `core`) | environment | allowed | meaning |
            |---|---|---|---|---|---|---|---|

            """
        for s in Setting.all {
            let flags: String
            switch (s.flags[.serve], s.flags[.core]) {
            case let (serve?, core?) where serve == core: flags = "`\(serve)`"
            case let (serve?, core?): flags = "`\(serve)` / `\(core)`"
            case let (serve?, nil): flags = "`\(serve)` (serve)"
            case let (nil, core?): flags = "`\(core)` (core)"
            case (nil, nil): flags = ""
            }
            let form: String
            if case .sets(let value) = s.flagForm { form = " (sets \(value))" } else { form = "" }
            let cells = [
                "`\(s.key)`", s.kindText.replacingOccurrences(of: "|", with: " | "), "`\(s.defaultText)`", s.unit,
                flags + form, "`\(s.environmentVariable)`", s.check.allowed, s.help + (s.isSecret ? " Secret: never printed." : ""),
            ]
            out += "| " + cells.map(Self.cell).joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// A table cell: GitHub's tables end a cell at any `|`, code spans included, and take
    /// `<word>` for HTML.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The settings part of `gateway serve --help` / `gateway core --help`.
    public static func help(for command: Setting.Command) -> String {
        var out = """
            Every setting can come from a JSON file (--config FILE), an environment variable or a flag; \
            flags win over the environment, which wins over the file, which wins over the defaults. \
            Every key: gateway/gateway.example.json and gateway/configuration.md; `gateway config check FILE` validates a file.

            SETTINGS (flag, file key, environment variable, default):

            """
        out += "  --config FILE\n      The settings file (JSON).\n"
        for s in Setting.all {
            guard let flag = s.flags[command] else { continue }
            let value: String
            switch s.flagForm {
            case .sets(let b): value = " (sets \(s.key) to \(b))"
            case .value: value = " <\(s.unit.isEmpty ? s.kindText : s.unit)>"
            }
            out += "  \(flag)\(value)\n      \(s.help)\n      key \(s.key), env \(s.environmentVariable), default \(s.defaultText)\n"
        }
        return out
    }
}
