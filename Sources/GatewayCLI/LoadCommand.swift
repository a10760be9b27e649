import ArgumentParser
import LoadTool
import NIOCore

#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// `gateway load`: drives a gateway (gRPC) or a core (REST) with StartTask calls or the vendor's
/// sizing journey, closed or open loop, and reports throughput, latency percentiles and errors.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load a gateway (gRPC, h2c) or a core (--rest) and report throughput, latency and errors.",
        discussion: """
        Scenarios (--scenario):

        start-task: one StartService first (or --service-id), then StartTask after StartTask on it.

        journey: the vendor's sizing scenario, 33 calls with about 10 kB of JSON: StartService; for each of 5 states StartState, 2 StartTask in it, their 2 CompleteTask, CompleteState; one QueryService (every flag) after the 2nd state, as an agent desktop reading what the IVR gathered; CompleteService. State and task ids come from the answers.

        Closed loop (default): each of --streams slots per connection starts its next unit when the previous one ends. Open loop (--rate): units start on a fixed schedule, waiting for a free slot when all are busy; latency counts from each unit's intended start, so stalls are not hidden (no coordinated omission); a journey's later calls count from the answer before. --requests counts units: StartTask calls, or journeys. Units started before the end run to their end; Ctrl-C stops early (calls in flight finish, the report covers what ran).

        Exit status: 0 when every call succeeded (or failed only with --expect-errors codes), 1 when calls failed otherwise or a connection was lost, 2 when the run could not start.

        Examples:
          gateway load --duration 10s --connections 4 --streams 64
          gateway load --scenario journey --rate 30 --duration 60s --json
          gateway load --rest --target 127.0.0.1:8090 --scenario journey
        """
    )

    @Option(help: "Where to send the load, host:port: a gateway, or a core with --rest.")
    var target: String = "127.0.0.1:50051"

    @Option(help: "start-task or journey.")
    var scenario: String = LoadConfiguration.Scenario.startTask.rawValue

    @Flag(help: "Play the scenario over the REST API (HTTP/1.1 keep-alive, JSON) instead of gRPC.")
    var rest = false

    @Option(help: "Connections to open.")
    var connections: Int = LoadConfiguration.defaults.connections

    @Option(help: "Units in flight per connection: concurrent HTTP/2 streams, or REST pipeline depth.")
    var streams: Int = LoadConfiguration.defaults.streams

    @Option(help: "Event loop threads for the connections.")
    var threads: Int = LoadConfiguration.defaults.threads

    @Option(help: "How long to measure, e.g. 10, 10s, 500ms, 2m (default 10s unless --requests is given).")
    var duration: String?

    @Option(help: "Units to run in total: StartTask calls, or journeys.")
    var requests: Int?

    @Option(help: "Open loop: units to start per second in total (fixed schedule).")
    var rate: Double?

    @Option(help: "Run this long before measuring (not counted), e.g. 2s.")
    var warmup: String = "0"

    @Option(help: "ContactCenterId: the tenant of every call.")
    var tenant: String?

    @Option(help: "Per call, sent as grpc-timeout and enforced by the client; 0 for none.")
    var timeout: String = "10s"

    @Option(help: "start-task: add the tasks to this service instead of starting one.")
    var serviceID: Int64?

    @Option(help: "REST: where the API lives.")
    var basePath: String = LoadConfiguration.defaults.basePath

    @Option(help: "Error codes that do not fail the run, comma-separated names or numbers (NOT_FOUND,5,404).")
    var expectErrors: String?

    @Flag(help: "Print the report as one JSON object on stdout (latencies in microseconds).")
    var json = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        _ = try makeConfiguration()
    }

    func makeConfiguration() throws -> LoadConfiguration {
        var c = LoadConfiguration()
        guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]),
              (1...65535).contains(port), colon != target.startIndex else {
            throw ValidationError("--target must be host:port, got '\(target)'")
        }
        var host = String(target[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        c.host = host
        c.port = port
        guard let scenario = LoadConfiguration.Scenario(rawValue: scenario) else {
            throw ValidationError("--scenario must be one of: \(LoadConfiguration.Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        c.scenario = scenario
        c.transport = rest ? .rest : .grpc
        c.connections = connections
        c.streams = streams
        c.threads = threads
        c.requests = requests
        c.rate = rate
        if let duration {
            guard let d = DurationText.parse(duration) else { throw ValidationError("--duration: not a duration: '\(duration)'") }
            c.duration = d
        } else if requests != nil {
            c.duration = nil
        }
        guard let w = DurationText.parse(warmup) else { throw ValidationError("--warmup: not a duration: '\(warmup)'") }
        c.warmup = w
        guard let t = DurationText.parse(timeout) else { throw ValidationError("--timeout: not a duration: '\(timeout)'") }
        c.timeout = t == .zero ? nil : t
        c.tenant = tenant
        c.serviceID = serviceID
        c.basePath = basePath
        if let problem = c.problem { throw ValidationError(problem) }
        return c
    }

    func run() async throws {
        let config = try makeConfiguration()
        let expected = Set((expectErrors ?? "").split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty })
        let load = try LoadRun(config)

        let termination = TerminationSignal.install()
        Task {
            await termination.wait()
            await load.stop()
        }

        let printer = ProgressPrinter(transport: config.transport, enabled: !quiet)
        let report: LoadReport
        do {
            report = try await load.run { printer.show($0) }
        } catch {
            printer.finish()
            StandardError.write("gateway load: \(error)\n")
            throw ExitCode(2)
        }
        printer.finish()
        if json {
            print(report.json)
        } else {
            print(report.text)
        }
        if report.unexpectedFailures(expected: expected) > 0 { throw ExitCode(1) }
    }
}

/// The live progress line on stderr: redrawn in place on a terminal, one line per second
/// otherwise (logs, pipes). Called by one ticker task at a time, so its state needs no lock.
private final class ProgressPrinter: @unchecked Sendable {
    private var line: ProgressLine
    private let enabled: Bool
    private let terminal: Bool
    private var drawn = false

    init(transport: LoadConfiguration.Transport, enabled: Bool) {
        line = ProgressLine(transport: transport)
        self.enabled = enabled
        terminal = isatty(2) != 0
    }

    func show(_ progress: LoadProgress) {
        guard enabled else { return }
        let text = line.render(progress)
        if terminal {
            StandardError.write("\r" + text + "\u{1B}[K")  // carriage return, then erase the rest of the old line
            drawn = true
        } else {
            StandardError.write(text + "\n")
        }
    }

    func finish() {
        if drawn { StandardError.write("\n") }
        drawn = false
    }
}

/// Writes to file descriptor 2 directly: the C `stderr` global is not concurrency-safe in Swift 6.
enum StandardError {
    static func write(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let n = systemWrite(2, base + offset, bytes.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}

private extension String {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
