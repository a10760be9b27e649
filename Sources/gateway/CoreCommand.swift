import ArgumentParser
import ContextModel
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TaskCore

/// The options of a task core, shared by `gateway core` and the embedded core of `gateway serve`.
struct CoreOptions: ParsableArguments {
    @Option(help: "The SQLite file (created with its folder on first start).")
    var data: String = "./data/cs.sqlite"

    @Option(help: "SQLite synchronous mode: full (fsync every commit: survives power loss), normal, off.")
    var synchronous: SQLiteTaskStore.Configuration.Synchronous = .full

    @Flag(help: "Keep everything in memory instead (not durable: tests and benchmarks only).")
    var memory = false

    @Option(help: "The path every operation lives under.")
    var basePath: String = RESTRoute.defaultBasePath

    @Option(help: "What Location headers start with, e.g. https://cs.example.com/genesys/1/cs (default: the base path).")
    var publicBase: String?

    @Option(help: "Largest accepted body, in bytes.")
    var maxBody: Int = JSONLimits.defaults.maxBytes

    @Option(help: "Deepest accepted JSON nesting.")
    var maxDepth: Int = JSONLimits.defaults.maxDepth

    @Option(help: "A bearer token that grants access; repeat for several. None: no authentication.")
    var authToken: [String] = []

    @Option(help: "Event loop threads (default: one per core).")
    var threads: Int = System.coreCount

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard maxBody > 0, maxDepth > 0, threads > 0 else {
            throw ValidationError("--max-body, --max-depth and --threads must be positive")
        }
    }

    var coreConfiguration: CoreConfiguration {
        var config = CoreConfiguration()
        config.basePath = basePath
        config.publicBase = publicBase
        config.limits = JSONLimits(maxBytes: maxBody, maxDepth: maxDepth)
        config.authTokens = authToken
        return config
    }

    var storeDescription: String { memory ? "memory" : "\(data) (synchronous=\(synchronous.rawValue))" }

    func makeStore(logger: Logger) throws -> any TaskStore {
        if memory {
            logger.warning("in-memory store: nothing survives a restart")
            return InMemoryTaskStore()
        }
        return try SQLiteTaskStore(.init(path: data, synchronous: synchronous))
    }
}

/// `gateway core`: the Context Services REST server on durable storage, alone.
struct CoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Run the task core alone: the Context Services REST API on a SQLite file."
    )

    @Option(help: "Address to listen on, host:port.")
    var listen: String = "127.0.0.1:8090"

    @OptionGroup var options: CoreOptions

    func validate() throws {
        guard HostPort(listen) != nil else { throw ValidationError("--listen must be host:port, got '\(listen)'") }
    }

    func run() async throws {
        bootstrapLogging(options.logLevel)
        let logger = Logger(label: "cs.core")
        let address = HostPort(listen)!
        let store = try options.makeStore(logger: logger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let service = ContextService(store: store, configuration: options.coreConfiguration, logger: logger)
        let server = try await CoreServer.start(host: address.host, port: address.port, service: service, group: group)
        logger.info("task core listening", metadata: [
            "address": "http://\(address.host):\(server.port)\(options.basePath)",
            "store": "\(options.storeDescription)",
        ])

        await waitForTermination()
        logger.info("shutting down")
        await server.shutdown()
        try await store.close()
        try await group.shutdownGracefully()
    }
}

func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardOutput(label: label)
        handler.logLevel = level
        return handler
    }
}

extension SQLiteTaskStore.Configuration.Synchronous: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

struct HostPort {
    var host: String
    var port: Int

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.host = host
        self.port = port
    }
}

/// Returns on SIGTERM or SIGINT.
func waitForTermination() async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let once = SignalOnce(continuation)
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { once.fire() }
            source.resume()
            once.keep(source)
        }
    }
}

/// Resumes the continuation on the first signal only; keeps the sources alive.
private final class SignalOnce: @unchecked Sendable {
    // Guarded by `lock`; @unchecked because DispatchSource is not Sendable.
    private let lock = NIOLock()
    private var continuation: CheckedContinuation<Void, Never>?
    private var sources: [any DispatchSourceSignal] = []

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }

    func keep(_ source: any DispatchSourceSignal) { lock.withLock { sources.append(source) } }

    func fire() {
        let c = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { continuation = nil }
            return continuation
        }
        c?.resume()
    }
}
