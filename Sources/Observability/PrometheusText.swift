/// Writes the Prometheus text exposition format, version 0.0.4
/// (https://prometheus.io/docs/instrumenting/exposition_formats/), for values that are not in
/// swift-prometheus's registry: the per-event-loop counters summed at scrape time. Label
/// values here are always from bounded, fixed sets (method names, status codes), never a
/// tenant or an id.
public struct PrometheusText {
    public private(set) var bytes: [UInt8] = []

    public init() {
        bytes.reserveCapacity(16 << 10)
    }

    public enum Kind: String { case counter, gauge, histogram }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    public mutating func family(_ name: String, _ kind: Kind, help: String) {
        append("# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n")
    }

    public mutating func sample(_ name: String, _ value: UInt64) {
        sample(name, [], value)
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        append(name)
        appendLabels(labels)
        append(" \(value)\n")
    }

    public mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        append(name)
        appendLabels(labels)
        append(" \(Self.format(value))\n")
    }

    /// The `_bucket` (cumulative, with `le`), `_sum` and `_count` series of one histogram;
    /// values are multiplied by `scale` (1e-9 for nanoseconds → seconds).
    public mutating func histogram(_ name: String, _ h: LoopHistogram, scale: Double = 1) {
        histogram(name, [], h, scale: scale)
    }

    public mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: LoopHistogram, scale: Double = 1) {
        var cumulative: UInt64 = 0
        for (i, bound) in h.bounds.enumerated() {
            cumulative &+= h.counts[i]
            sample(name + "_bucket", labels + [("le", Self.format(Double(bound) * scale))], cumulative)
        }
        cumulative &+= h.counts[h.bounds.count]
        sample(name + "_bucket", labels + [("le", "+Inf")], cumulative)
        sample(name + "_sum", labels, Double(h.sum) * scale)
        sample(name + "_count", labels, h.count)
    }

    public mutating func append(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    private mutating func appendLabels(_ labels: [(String, String)]) {
        guard !labels.isEmpty else { return }
        bytes.append(UInt8(ascii: "{"))
        for (i, (name, value)) in labels.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            append(name)
            append("=\"")
            for byte in value.utf8 {  // the format's three escapes
                switch byte {
                case UInt8(ascii: "\\"): append("\\\\")
                case UInt8(ascii: "\""): append("\\\"")
                case UInt8(ascii: "\n"): append("\\n")
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Shortest round-trip spelling; integral values without a fraction (`0.001`, `1`, `2.5`).
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
