import NIOCore

/// Durations on the command line: `3` or `3s`, `250ms`, `500us`, `2m`; fractions allowed (`1.5s`).
public enum DurationText {
    public static func parse(_ text: String) -> TimeAmount? {
        let units: [(suffix: String, nanos: Double)] = [("ms", 1e6), ("us", 1e3), ("µs", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var number = Substring(text)
        var scale = 1e9
        for unit in units where number.hasSuffix(unit.suffix) {
            number = number.dropLast(unit.suffix.count)
            scale = unit.nanos
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite, value >= 0 else { return nil }
        let nanos = value * scale
        guard nanos < 9e18 else { return nil }
        return .nanoseconds(Int64(nanos.rounded()))
    }
}
