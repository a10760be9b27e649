import ContextModel
import NIOCore
import Testing
@testable import LoadTool

@Suite("Configuration, stats and report")
struct ReportTests {
    @Test("Requests are split over the connections with nothing lost", arguments: [(10, 3), (1, 4), (1_000, 1), (7, 7)])
    func quotas(requests: Int, connections: Int) {
        var c = LoadConfiguration()
        c.requests = requests
        c.connections = connections
        let quotas = (0..<connections).map { c.quota(connection: $0) ?? -1 }
        #expect(quotas.reduce(0, +) == requests)
        #expect((quotas.max() ?? 0) - (quotas.min() ?? 0) <= 1)
    }

    @Test("Configurations that cannot run say why")
    func problems() {
        var c = LoadConfiguration()
        #expect(c.problem == nil)
        c.duration = nil
        #expect(c.problem != nil)
        c.requests = 5
        #expect(c.problem == nil)
        c.rate = 0
        #expect(c.problem != nil)
        c.rate = 100
        c.tenant = "has space"
        #expect(c.problem != nil)
        c.tenant = "t-1"
        c.scenario = .journey
        c.serviceID = 3
        #expect(c.problem != nil)
    }

    @Test("Durations on the command line", arguments: [
        ("3", TimeAmount?.some(.seconds(3))), ("1.5s", .milliseconds(1_500)), ("250ms", .milliseconds(250)),
        ("2m", .seconds(120)), ("40us", .microseconds(40)), ("0", .zero), ("", nil), ("-1", nil), ("1x", nil), ("s", nil),
    ])
    func durations(text: String, expected: TimeAmount?) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test("Stats merge: counts add up, histograms combine, the first message of each error stays")
    func merge() {
        var a = LoadStats()
        a.record(.startTask, .ok(1), nanos: 1_000_000)
        a.record(.startTask, .failed(5, "first"), nanos: 2_000_000)
        var b = LoadStats()
        b.record(.startTask, .failed(5, "second"), nanos: 3_000_000)
        b.record(.startService, .ok(2), nanos: 4_000_000)
        b.journeyCompleted(nanos: 10_000_000)
        a.merge(b)
        #expect(a.calls == 4)
        #expect(a.ok == 2)
        #expect(a.errors == [5: 2])
        #expect(a.errorMessages == [5: "first"])
        #expect(a.okByMethod[LoadMethod.startTask.rawValue] == 1)
        #expect(a.okByMethod[LoadMethod.startService.rawValue] == 1)
        #expect(a.latency.totalCount == 4)
        #expect(a.journeysCompleted == 1)
    }

    @Test("The JSON report has the figures scripts read")
    func json() throws {
        var c = LoadConfiguration()
        c.tenant = "t\"1"
        var stats = LoadStats()
        for i in 1...100 { stats.record(.startTask, .ok(Int64(i)), nanos: Int64(i) * 1_000) }
        stats.record(.startTask, .failed(5, "There are no service found for : 9"), nanos: 500)
        let report = LoadReport(configuration: c, duration: 2, stats: stats, serviceID: 9, connectionsLost: 0)
        let members = try StrictJSON.readObject(Array(report.json.utf8))
        let keys = members.map(\.key)
        for key in ["scenario", "transport", "mode", "requests", "ok", "failed", "errors", "duration_s", "rate",
                    "latency_us", "ok_by_method", "service_id", "connections_lost", "tenant"] {
            #expect(keys.contains(key), "\(key) missing")
        }
        #expect(report.json.contains(#""requests":101"#))
        #expect(report.json.contains(#""errors":{"NOT_FOUND":1}"#))
        #expect(report.json.contains(#""rate":50.500"#))
        #expect(report.json.contains(#""p50":50"#))
        #expect(report.unexpectedFailures(expected: []) == 1)
        #expect(report.unexpectedFailures(expected: ["not_found"]) == 0)
        #expect(report.unexpectedFailures(expected: ["5"]) == 0)
    }

    @Test("Error names: gRPC codes by name, REST by HTTP status")
    func errorNames() {
        #expect(ErrorCode.name(14, transport: .grpc) == "UNAVAILABLE")
        #expect(ErrorCode.name(404, transport: .rest) == "404")
        #expect(ErrorCode.name(ErrorCode.timeout, transport: .rest) == "TIMEOUT")
        for code in GRPCStatusCode.allCases {
            #expect(ErrorCode.name(code.rawValue, transport: .grpc) == code.description)
        }
    }

    @Test("Numbers for people")
    func format() {
        #expect(Format.grouped(1_234_567) == "1,234,567")
        #expect(Format.grouped(-1_000) == "-1,000")
        #expect(Format.grouped(999) == "999")
        #expect(Format.number(2.0 / 3.0, decimals: 3) == "0.667")
        #expect(Format.number(-1.5, decimals: 0) == "-2")
        #expect(Format.number(12, decimals: 2) == "12.00")
        #expect(Format.rate(3674.42) == "3,674.4")
        #expect(Format.micros(850) == "850 µs")
        #expect(Format.micros(1_234) == "1.23 ms")
        #expect(Format.micros(2_500_000) == "2.50 s")
    }

    @Test("The progress line shows the rate of the last interval and the errors so far")
    func progressLine() {
        var line = ProgressLine(transport: .grpc)
        var stats = LoadStats()
        for _ in 0..<1_000 { stats.record(.startTask, .ok(1), nanos: 1_000_000) }
        _ = line.render(LoadProgress(elapsed: 1, stats: stats))
        for _ in 0..<3_000 { stats.record(.startTask, .ok(1), nanos: 1_000_000) }
        stats.record(.startTask, .failed(14, nil), nanos: 1_000_000)
        let text = line.render(LoadProgress(elapsed: 2, stats: stats))
        #expect(text.hasPrefix("[2s] 3,001 req/s  4,001 calls"))
        #expect(text.contains("errors UNAVAILABLE=1"))
        #expect(text.contains("p50 1.00 ms"))
    }
}
