import ContextModel
import Histogram

/// Latency percentiles of a histogram, in microseconds.
public struct LatencySummary: Sendable, Equatable {
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64
    public var mean: Double

    init(_ h: Histogram<UInt64>) {
        guard h.totalCount > 0 else {
            self.init(p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0)
            return
        }
        self.init(p50: h.valueAtPercentile(50), p90: h.valueAtPercentile(90), p99: h.valueAtPercentile(99),
                  p999: h.valueAtPercentile(99.9), max: h.max, mean: h.mean)
    }

    public init(p50: UInt64, p90: UInt64, p99: UInt64, p999: UInt64, max: UInt64, mean: Double) {
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
    }
}

/// What a run measured, as text for people and as one JSON object for scripts.
public struct LoadReport: Sendable {
    public var configuration: LoadConfiguration
    /// Seconds from the end of the warm-up to the last answer.
    public var duration: Double
    public var stats: LoadStats
    /// start-task: the service the tasks went to.
    public var serviceID: Int64?
    /// Connections that closed before their part of the run was over.
    public var connectionsLost: Int

    public init(configuration: LoadConfiguration, duration: Double, stats: LoadStats, serviceID: Int64?, connectionsLost: Int) {
        self.configuration = configuration
        self.duration = duration
        self.stats = stats
        self.serviceID = serviceID
        self.connectionsLost = connectionsLost
    }

    public var requests: Int { stats.calls }
    public var rate: Double { Double(stats.calls) / duration }
    public var latency: LatencySummary { LatencySummary(stats.latency) }
    public var journeyLatency: LatencySummary { LatencySummary(stats.journeyLatency) }

    /// Failures by name, most frequent first: (name, count, first message).
    public var errors: [(name: String, count: Int, message: String?)] {
        stats.errors.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map {
            (ErrorCode.name($0.key, transport: configuration.transport), $0.value, stats.errorMessages[$0.key])
        }
    }

    /// Failed calls whose name (or number) is not in `expected`, plus one per lost connection:
    /// what makes the run a failure.
    public func unexpectedFailures(expected: Set<String>) -> Int {
        let allowed = Set(expected.map { $0.uppercased() })
        let calls = stats.errors.reduce(0) { sum, entry in
            let name = ErrorCode.name(entry.key, transport: configuration.transport)
            return allowed.contains(name) || allowed.contains(String(entry.key)) ? sum : sum + entry.value
        }
        return calls + connectionsLost
    }

    private var mode: String { configuration.rate == nil ? "closed" : "open" }

    // MARK: Text

    public var text: String {
        let c = configuration
        var lines: [String] = []
        let loop = c.rate.map { "open loop at \(Format.rate($0))/s" } ?? "closed loop"
        lines.append("\(c.scenario.rawValue) over \(c.transport == .grpc ? "gRPC" : "REST") to \(c.authority): \(loop), "
                     + "\(c.connections) connection\(c.connections == 1 ? "" : "s") × \(c.streams) streams, \(Format.number(duration, decimals: 2)) s measured")
        lines.append("requests   \(Format.grouped(requests)) (\(Format.rate(rate))/s)   ok \(Format.grouped(stats.ok))   failed \(Format.grouped(stats.failed))")
        lines.append("latency    " + Self.describe(latency) + (c.rate == nil ? "" : "   (from intended send times)"))
        for e in errors {
            lines.append("error      \(e.name) × \(Format.grouped(e.count))" + (e.message.map { ": \($0)" } ?? ""))
        }
        let methods = LoadMethod.allCases.filter { stats.okByMethod[$0.rawValue] > 0 }
            .map { "\($0) \(Format.grouped(stats.okByMethod[$0.rawValue]))" }
        if !methods.isEmpty { lines.append("ok by rpc  " + methods.joined(separator: ", ")) }
        if c.scenario == .journey {
            lines.append("journeys   completed \(Format.grouped(stats.journeysCompleted)) (\(Format.rate(Double(stats.journeysCompleted) / duration))/s), "
                         + "failed \(Format.grouped(stats.journeysFailed))   " + Self.describe(journeyLatency))
        }
        if let serviceID { lines.append("service    \(serviceID)") }
        if connectionsLost > 0 { lines.append("lost       \(connectionsLost) connection\(connectionsLost == 1 ? "" : "s") before the end") }
        return lines.joined(separator: "\n")
    }

    static func describe(_ l: LatencySummary) -> String {
        "p50 \(Format.micros(l.p50))  p90 \(Format.micros(l.p90))  p99 \(Format.micros(l.p99))  p99.9 \(Format.micros(l.p999))  max \(Format.micros(l.max))"
    }

    // MARK: JSON

    /// One JSON object (one line) with the figures scripts need; latencies in microseconds.
    public var json: String {
        var o = JSONObject()
        let c = configuration
        o.string("scenario", c.scenario.rawValue)
        o.string("transport", c.transport.rawValue)
        o.string("mode", mode)
        o.string("target", c.authority)
        if let tenant = c.tenant { o.string("tenant", tenant) }
        o.int("connections", c.connections)
        o.int("streams", c.streams)
        if let rate = c.rate { o.number("intended_rate", rate) }
        o.number("duration_s", duration)
        o.int("requests", requests)
        o.int("ok", stats.ok)
        o.int("failed", stats.failed)
        o.number("rate", rate)
        o.object("errors") { e in for x in errors { e.int(x.name, x.count) } }
        o.object("error_messages") { e in for x in errors { if let m = x.message { e.string(x.name, m) } } }
        o.object("ok_by_method") { m in
            for method in LoadMethod.allCases where stats.okByMethod[method.rawValue] > 0 {
                m.int(method.description, stats.okByMethod[method.rawValue])
            }
        }
        o.object("latency_us") { Self.write(latency, to: &$0) }
        if c.scenario == .journey {
            o.int("journeys_completed", stats.journeysCompleted)
            o.int("journeys_failed", stats.journeysFailed)
            o.object("journey_latency_us") { Self.write(journeyLatency, to: &$0) }
        }
        if let serviceID { o.int("service_id", Int(serviceID)) }
        o.int("connections_lost", connectionsLost)
        return o.text
    }

    private static func write(_ l: LatencySummary, to o: inout JSONObject) {
        o.int("p50", Int(l.p50))
        o.int("p90", Int(l.p90))
        o.int("p99", Int(l.p99))
        o.int("p99_9", Int(l.p999))
        o.int("max", Int(l.max))
        o.number("mean", l.mean)
    }
}

/// The live line: rate over the last interval, totals, errors, percentiles so far.
public struct ProgressLine {
    private var previous: (elapsed: Double, calls: Int)?
    private let transport: LoadConfiguration.Transport

    public init(transport: LoadConfiguration.Transport) {
        self.transport = transport
    }

    public mutating func render(_ p: LoadProgress) -> String {
        let rate: Double
        if let previous, p.elapsed > previous.elapsed {
            rate = Double(p.stats.calls - previous.calls) / (p.elapsed - previous.elapsed)
        } else {
            rate = p.elapsed > 0 ? Double(p.stats.calls) / p.elapsed : 0
        }
        previous = (p.elapsed, p.stats.calls)
        let clock = p.elapsed < 0 ? "warm-up" : Format.number(p.elapsed, decimals: 0) + "s"
        var line = "[\(clock)] \(Format.grouped(Int(rate.rounded()))) req/s  \(Format.grouped(p.stats.calls)) calls"
        if p.stats.failed > 0 {
            let errors = p.stats.errors.sorted { $0.value > $1.value }
                .map { "\(ErrorCode.name($0.key, transport: transport))=\(Format.grouped($0.value))" }
            line += "  errors " + errors.joined(separator: " ")
        }
        let l = LatencySummary(p.stats.latency)
        line += "  p50 \(Format.micros(l.p50))  p99 \(Format.micros(l.p99))"
        if p.stats.journeysCompleted + p.stats.journeysFailed > 0 {
            line += "  journeys \(Format.grouped(p.stats.journeysCompleted))"
        }
        return line
    }
}

/// Number formatting without Foundation.
enum Format {
    /// `1234567` → `1,234,567`.
    static func grouped(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// Fixed-point with `decimals` digits after the point, rounded half away from zero.
    static func number(_ v: Double, decimals: Int) -> String {
        guard v.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (v.magnitude * scale).rounded()
        guard scaled < 9e18 else { return String(v) }
        let whole = UInt64(scaled)
        let unit = UInt64(scale)
        var text = String(whole / unit)
        if decimals > 0 {
            let fraction = String(whole % unit)
            text += "." + String(repeating: "0", count: decimals - fraction.count) + fraction
        }
        return (v < 0 && scaled > 0 ? "-" : "") + text
    }

    /// `3674.42` → `3,674.4`.
    static func rate(_ v: Double) -> String {
        let text = number(v, decimals: 1)
        guard let dot = text.firstIndex(of: "."), let whole = Int(text[..<dot]) else { return text }
        return grouped(whole) + text[dot...]
    }

    /// Microseconds as people read them: `850 µs`, `1.23 ms`, `2.50 s`.
    static func micros(_ us: UInt64) -> String {
        if us < 1_000 { return "\(us) µs" }
        if us < 1_000_000 { return number(Double(us) / 1e3, decimals: 2) + " ms" }
        return number(Double(us) / 1e6, decimals: 2) + " s"
    }
}

/// A JSON object written member by member (ContextModel's canonical writer underneath).
struct JSONObject {
    private var bytes: [UInt8] = [UInt8(ascii: "{")]

    private mutating func key(_ k: String) {
        if bytes.count > 1 { bytes.append(UInt8(ascii: ",")) }
        JSONWriter.appendKey(k, to: &bytes)
    }

    mutating func string(_ k: String, _ v: String) {
        key(k)
        JSONWriter.appendString(v, to: &bytes)
    }

    mutating func int(_ k: String, _ v: Int) {
        key(k)
        JSONWriter.appendInt(Int64(v), to: &bytes)
    }

    /// Three decimals: enough for rates and seconds.
    mutating func number(_ k: String, _ v: Double) {
        key(k)
        bytes += Array(Format.number(v, decimals: 3).utf8)
    }

    mutating func object(_ k: String, _ body: (inout JSONObject) -> Void) {
        var inner = JSONObject()
        body(&inner)
        key(k)
        bytes += inner.bytes
        bytes.append(UInt8(ascii: "}"))
    }

    var text: String { String(decoding: bytes + [UInt8(ascii: "}")], as: UTF8.self) }
}
