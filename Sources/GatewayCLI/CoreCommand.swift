import ArgumentParser
import ContextModel
import GatewaySettings
import Logging
import NIOCore
import NIOPosix
import Observability
import TaskCore

/// `gateway core`: the Context Services REST server on durable storage, alone. Its settings
/// are the `core`, `store`, `connections`, `process`, `logging` and `lifecycle` sections of
/// `Setting.all` (README, "Configuration").
struct CoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Run the task core alone: the Context Services REST API on a SQLite file or PostgreSQL.",
        discussion: SettingsDocument.help(for: .core)
    )

    @Argument(parsing: .allUnrecognized, help: "Settings as flags (below), and --config FILE.")
    var arguments: [String] = []

    func run() async throws {
        let termination = TerminationSignal.install()
        let settings = try Settings.resolve(command: .core, arguments: arguments)
        let core = CoreSetup(settings: settings)
        MallocTuning.apply()
        let memoryRelease = MallocTuning.releaseAfterSpikes()
        defer { memoryRelease.cancel() }
        bootstrapLogging(core.logLevel)
        let logger = Logger(label: "cs.core")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: core.threads)
        let lifecycle = Lifecycle(drainTimeout: core.drainTimeout, logger: logger)
        lifecycle.started("event loops") { try? await group.shutdownGracefully() }
        do {
            // The store, then the listener.
            let store = try await core.makeStore(group: group, logger: logger)
            let purger = KeyPurger(store: store)
            lifecycle.started("store") {
                await purger.stop()
                do { try await store.close() } catch { logger.error("closing the store failed", metadata: ["error": "\(error)"]) }
            }
            let metricsSetup = MetricsSetup(settings: settings)
            let metrics = metricsSetup.makeMetrics()
            let service = ContextService(store: store, configuration: core.coreConfiguration, logger: logger,
                                         metrics: metrics.map { CoreMetrics(registry: $0.registry) })
            let address = core.listen
            let server: CoreServer
            do {
                server = try await CoreServer.start(host: address.host, port: address.port, service: service, group: group,
                                                    limits: core.connectionLimits, slots: core.connectionSlots())
            } catch {
                throw PlainError.bindFailure(error, address: address, setting: "core.listen", settings: settings)
            }
            let drain = lifecycle.drain
            lifecycle.started("listener") { await server.shutdown(grace: drain.remaining) }
            if let endpoint = try await metricsSetup.startEndpoint(metrics, group: group, logger: logger) {
                lifecycle.started("metrics listener") { await endpoint.shutdown() }
            }
            logger.info("task core listening", metadata: [
                "address": "http://\(address.host):\(server.port)\(core.basePath)",
                "store": "\(core.storeDescription)", "store_id": "\(store.identity.id)",
            ])
        } catch {
            await lifecycle.unwind()
            throw error
        }
        try await lifecycle.run(until: termination)
    }
}

func bootstrapLogging(_ level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardOutput(label: label)
        handler.logLevel = level
        return handler
    }
}
