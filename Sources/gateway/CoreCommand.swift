import ArgumentParser
import ContextModel
import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Observability
import TaskCore

/// The options of a task core, shared by `gateway core` and the embedded core of `gateway serve`.
struct CoreOptions: ParsableArguments {
    @Option(help: "The SQLite file (created with its folder on first start).")
    var data: String = "./data/cs.sqlite"

    @Option(help: "SQLite synchronous mode: full (fsync every commit: survives power loss), normal, off.")
    var synchronous: SQLiteTaskStore.Configuration.Synchronous = .full

    @Flag(help: "Keep everything in memory instead (not durable: tests and benchmarks only).")
    var memory = false

    @Option(help: "The store: a PostgreSQL database, postgres://user@host:port/database[?sslmode=disable|prefer|require] (password from CS_STORE_PASSWORD or --store-password-file, never here). Default: the SQLite file of --data.")
    var store: String?

    @Option(help: "A file holding the PostgreSQL password (its first line); CS_STORE_PASSWORD is read when this is not given.")
    var storePasswordFile: String?

    @Option(help: "PostgreSQL: connections of this core process.")
    var storeMaxConnections: Int = 16

    @Option(help: "PostgreSQL: how long one store call may wait for a connection and run before it fails 503 (nothing applied), milliseconds.")
    var storeTimeoutMillis: Int = 3000

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

    @Flag(help: "Turn the batch extension (POST {base}/batch) off: the core then looks like a vendor core.")
    var noBatchEndpoint = false

    @Option(help: "How long a client's Idempotency-Key is kept, seconds (a retry within it gets the first answer).")
    var idempotencyKeySeconds: Int64 = CoreConfiguration.defaults.idempotencyKeyLifetimeSeconds

    @Option(help: "How long a key a gateway made for its own resends is kept, seconds.")
    var gatewayKeySeconds: Int64 = CoreConfiguration.defaults.gatewayKeyLifetimeSeconds

    @Option(help: "Most items in one batch (413 beyond).")
    var maxBatchItems: Int = CoreConfiguration.defaults.maxBatchItems

    @Option(help: "Largest batch body, bytes (413 beyond).")
    var maxBatchBytes: Int = CoreConfiguration.defaults.maxBatchBytes

    @Option(help: "Event loop threads (default: one per core).")
    var threads: Int = System.coreCount

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard maxBody > 0, maxDepth > 0, threads > 0, maxBatchItems > 0, maxBatchBytes > 0 else {
            throw ValidationError("--max-body, --max-depth, --threads and the batch limits must be positive")
        }
        guard idempotencyKeySeconds > 0, gatewayKeySeconds > 0 else {
            throw ValidationError("--idempotency-key-seconds and --gateway-key-seconds must be positive")
        }
        guard storeMaxConnections > 0, storeTimeoutMillis > 0 else {
            throw ValidationError("--store-max-connections and --store-timeout-millis must be positive")
        }
        if let store {
            guard !memory else { throw ValidationError("--store and --memory go alone: choose one store") }
            do {
                _ = try PostgresTaskStore.Configuration.parse(url: store, password: nil)
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    /// The PostgreSQL configuration of `--store`, with its password read now.
    func postgresConfiguration(_ url: String) throws -> PostgresTaskStore.Configuration {
        var password = ProcessInfo.processInfo.environment["CS_STORE_PASSWORD"]
        if let file = storePasswordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("--store-password-file: cannot read \(file)")
            }
            password = String(text.prefix { $0 != "\n" && $0 != "\r" })
        }
        var config = try PostgresTaskStore.Configuration.parse(url: url, password: password)
        config.maxConnections = storeMaxConnections
        config.operationTimeout = .milliseconds(storeTimeoutMillis)
        return config
    }

    var coreConfiguration: CoreConfiguration {
        var config = CoreConfiguration()
        config.basePath = basePath
        config.publicBase = publicBase
        config.limits = JSONLimits(maxBytes: maxBody, maxDepth: maxDepth)
        config.authTokens = authToken
        config.batchEnabled = !noBatchEndpoint
        config.maxBatchItems = maxBatchItems
        config.maxBatchBytes = maxBatchBytes
        config.idempotencyKeyLifetimeSeconds = idempotencyKeySeconds
        config.gatewayKeyLifetimeSeconds = gatewayKeySeconds
        return config
    }

    var storeDescription: String {
        if let store, let config = try? PostgresTaskStore.Configuration.parse(url: store, password: nil) {
            return config.description
        }
        return memory ? "memory" : "\(data) (synchronous=\(synchronous.rawValue))"
    }

    func makeStore(group: any EventLoopGroup, logger: Logger) async throws -> any TaskStore {
        if memory {
            logger.warning("in-memory store: nothing survives a restart")
            return InMemoryTaskStore()
        }
        if let store {
            let config = try postgresConfiguration(store)
            do {
                return try await PostgresTaskStore.open(config, eventLoopGroup: group, logger: Logger(label: "cs.core.postgres"))
            } catch {
                throw StartupError("cannot open the PostgreSQL store \(config.description): \(String(reflecting: error)). "
                    + "Check that the server runs and accepts this user (--store, CS_STORE_PASSWORD or --store-password-file).")
            }
        }
        do {
            return try SQLiteTaskStore(.init(path: data, synchronous: synchronous))
        } catch {
            throw StartupError("cannot open the SQLite store at \(data): \(error). Check that its folder can be created "
                + "and written by this user, or choose another file with --data.")
        }
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

    @OptionGroup(title: "Connections")
    var connections: ConnectionOptions

    @OptionGroup(title: "Metrics")
    var observability: ObservabilityOptions

    func validate() throws {
        guard HostPort(listen) != nil else { throw ValidationError("--listen must be host:port, got '\(listen)'") }
        try observability.validate()
    }

    func run() async throws {
        let termination = TerminationSignal.install()
        MallocTuning.apply()
        bootstrapLogging(options.logLevel)
        let logger = Logger(label: "cs.core")
        let address = HostPort(listen)!
        let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        let store = try await options.makeStore(group: group, logger: logger)
        let metrics = observability.makeMetrics()
        let service = ContextService(store: store, configuration: options.coreConfiguration, logger: logger,
                                     metrics: metrics.map { CoreMetrics(registry: $0.registry) })
        let purger = KeyPurger(store: store)
        let server = try await CoreServer.start(host: address.host, port: address.port, service: service, group: group,
                                                limits: connections.limits)
        let metricsEndpoint = try await observability.startEndpoint(metrics, group: group, logger: logger)
        logger.info("task core listening", metadata: [
            "address": "http://\(address.host):\(server.port)\(options.basePath)",
            "store": "\(options.storeDescription)", "store_id": "\(store.identity.id)",
        ])

        await termination.wait()
        logger.info("shutting down")
        await server.shutdown()
        await metricsEndpoint?.shutdown()
        await purger.stop()
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

/// A start-up failure, said in plain words: what is wrong and which setting to change.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

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

/// SIGTERM and SIGINT, caught from the moment `install()` returns: install before anything
/// announces that the process is ready, or a signal sent in between (a supervisor, a test
/// that waits for the "listening" line) could be lost and the process never exit.
final class TerminationSignal: @unchecked Sendable {
    // `sources` is written once in `install`, before any signal can be handled.
    private var sources: [any DispatchSourceSignal] = []
    private let fired = NIOLockedValueBox(false)
    private let waiter = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)

    static func install() -> TerminationSignal {
        let t = TerminationSignal()
        for sig in [SIGTERM, SIGINT] {
            // In this order: on Linux, libdispatch installs its own handler when the source
            // is created, and a SIG_IGN set afterwards would replace it (signals then lost).
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { t.fire() }
            source.resume()
            t.sources.append(source)
        }
        return t
    }

    private func fire() {
        fired.withLockedValue { $0 = true }
        waiter.withLockedValue { c in
            c?.resume()
            c = nil
        }
    }

    /// Returns once a signal has arrived (at once if one already did).
    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = fired.withLockedValue { $0 }
            if already { return c.resume() }
            waiter.withLockedValue { $0 = c }
            // A signal between the two reads above resumed nothing: check again.
            if fired.withLockedValue({ $0 }) {
                waiter.withLockedValue { w in
                    w?.resume()
                    w = nil
                }
            }
        }
    }
}
