import ArgumentParser
import ContextModel
import Foundation
import Gateway
import GatewayHTTP
import GRPCServer
import GatewaySettings
import HTTPServing
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Observability
import TaskCore

/// `gateway serve` (the default): the gRPC front end, with an embedded task core on a SQLite
/// file unless `gateway.upstream` names external cores. Even embedded, the gateway reaches
/// the core over its HTTP/1.1 socket, through the same upstream code as in production.
///
/// Its settings are `Setting.all` (flags, environment, `--config FILE`; README,
/// "Configuration"), read by `Settings.resolve`, not declared here: ArgumentParser collects
/// the arguments and the table parses them, so that a setting is declared once.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway (gRPC, gRPC-Web and REST on one port), with an embedded task core unless gateway.upstream is set.",
        discussion: SettingsDocument.help(for: .serve)
    )

    @Argument(parsing: .allUnrecognized, help: "Settings as flags (below), and --config FILE.")
    var arguments: [String] = []

    func run() async throws {
        let termination = TerminationSignal.install()
        let settings = try Settings.resolve(command: .serve, arguments: arguments)
        let core = CoreSetup(settings: settings)
        MallocTuning.apply()
        let memoryRelease = MallocTuning.releaseAfterSpikes()
        defer { memoryRelease.cancel() }
        bootstrapLogging(core.logLevel)
        let logger = Logger(label: "cs.gateway")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: core.threads)
        let lifecycle = Lifecycle(drainTimeout: core.drainTimeout, logger: logger)
        lifecycle.started("event loops") { try? await group.shutdownGracefully() }
        do {
            try await start(settings: settings, core: core, group: group, lifecycle: lifecycle, logger: logger)
        } catch {
            await lifecycle.unwind()
            throw error
        }
        try await lifecycle.run(until: termination)
    }

    /// Store, core, pool, listener: each once the one before it runs.
    private func start(settings: Settings, core: CoreSetup, group: MultiThreadedEventLoopGroup, lifecycle: Lifecycle,
                       logger: Logger) async throws {
        let drain = lifecycle.drain
        let limits = core.connectionLimits
        let slots = core.connectionSlots()
        let metricsSetup = MetricsSetup(settings: settings)
        let metrics = metricsSetup.makeMetrics()

        // The TLS files before anything else: a bad one should not leave a store half-opened.
        let grpcOnly = settings.bool("gateway.grpc-only")
        let tls = try settings.optionalString("gateway.tls-cert").map { cert in
            try Self.tlsContext(certificate: cert, key: settings.optionalString("gateway.tls-key")!, http1: !grpcOnly, settings: settings)
        }

        // The core: embedded (store, then its listener), or the ones named.
        let upstreamAddresses: [HostPort]
        let configured = settings.strings("gateway.upstream").map { HostPort($0)! }
        if !configured.isEmpty {
            upstreamAddresses = configured
        } else {
            let store = try await core.makeStore(group: group, logger: logger)
            let purger = KeyPurger(store: store)
            lifecycle.started("store") {
                await purger.stop()
                do { try await store.close() } catch { logger.error("closing the store failed", metadata: ["error": "\(error)"]) }
            }
            let address = core.listen
            let service = ContextService(store: store, configuration: core.coreConfiguration, logger: logger,
                                         metrics: metrics.map { CoreMetrics(registry: $0.registry) })
            let server: CoreServer
            do {
                server = try await CoreServer.start(host: address.host, port: address.port, service: service, group: group, limits: limits,
                                                    slots: slots)
            } catch {
                throw PlainError.bindFailure(error, address: address, setting: "core.listen", settings: settings)
            }
            lifecycle.started("task core") { await server.shutdown(grace: max(drain.remaining, .seconds(1))) }
            upstreamAddresses = [HostPort(host: address.host, port: server.port)]
            logger.info("task core listening", metadata: [
                "address": "http://\(address.host):\(server.port)\(core.basePath)", "store": "\(core.storeDescription)",
                "store_id": "\(store.identity.id)",
            ])
        }

        // The pool and its batchers.
        var upstreamConfig = UpstreamPool.Configuration(addresses: upstreamAddresses.map { ($0.host, $0.port) })
        upstreamConfig.maxConnections = settings.int("pool.connections")
        var gatewayConfig = ContextGateway.Configuration()
        gatewayConfig.basePath = core.basePath
        gatewayConfig.limits = core.coreConfiguration.limits
        gatewayConfig.batching = settings.bool("batcher.enabled")
        gatewayConfig.batcher.maxItems = settings.int("batcher.max-items")
        gatewayConfig.batcher.maxDelay = .microseconds(Int64(settings.int("batcher.max-delay-micros")))
        gatewayConfig.batcher.maxInFlight = settings.optionalInt("batcher.max-in-flight")
        gatewayConfig.batcher.maxQueued = settings.int("batcher.max-queued")
        gatewayConfig.authTokens = core.coreConfiguration.authTokens  // refuse at the gateway as the core would
        gatewayConfig.restTimeout = .milliseconds(Int64(settings.int("gateway.rest-timeout-millis")))
        gatewayConfig.healthPath = settings.string("gateway.health-path")
        gatewayConfig.readyPath = settings.string("gateway.ready-path")
        gatewayConfig.corsAllowedOrigins = settings.strings("gateway.cors-origins")
        gatewayConfig.gatewayKeys = settings.bool("pool.gateway-keys")
        gatewayConfig.metrics = metrics != nil
        let gateway = ContextGateway(group: group, upstream: upstreamConfig, configuration: gatewayConfig, logger: logger)
        metrics?.addCollector { await gateway.renderMetrics() }
        lifecycle.started("upstream pool") { await gateway.close(group: group) }
        // Cores of different stores would hand out the same ids: refuse to start over them.
        let stores: [(address: String, answer: StoreAnswer?)]
        do {
            stores = try await gateway.verifyStores()
        } catch {
            throw StartupError("\(error). Every core in \(settings.name("gateway.upstream")) must serve one store.")
        }
        if upstreamAddresses.count > 1, stores.contains(where: { $0.answer == .anonymous }) {
            logger.warning("several task cores that do not report their store: make sure they share one", metadata: [
                "cores": "\(stores.map(\.address).joined(separator: ", "))",
            ])
        }

        // The listener, last: clients come only once everything behind it runs.
        var handlerConfig = GRPCServerHandler.Configuration()
        handlerConfig.observers = gateway.observers
        handlerConfig.limits = limits
        handlerConfig.maxMessageBytes = settings.int("gateway.max-message-bytes")
        handlerConfig.http2.maxConcurrentStreams = UInt32(settings.int("gateway.max-concurrent-streams"))
        handlerConfig.http2.initialWindowSize = UInt32(settings.int("gateway.initial-window-size"))
        handlerConfig.cancelledCallsBurst = settings.int("gateway.cancelled-calls-burst")
        handlerConfig.cancelledCallsPerSecond = settings.int("gateway.cancelled-calls-per-second")
        handlerConfig.maxBufferedRequestBytesPerConnection = settings.int("gateway.max-buffered-request-bytes-per-connection")
        handlerConfig.processRequestBudget = ProcessByteBudget(maxBytes: settings.int("gateway.max-buffered-request-bytes"))
        handlerConfig.processAnswerBudget = ProcessByteBudget(maxBytes: settings.int("gateway.max-buffered-answer-bytes"))
        if settings.bool("admission.enabled") {
            var admission = AdmissionLimiter.Configuration()
            admission.targetDelay = .milliseconds(Int64(settings.int("admission.target-millis")))
            admission.maxWait = .milliseconds(Int64(settings.int("admission.max-wait-millis")))
            // Never more in flight than the batcher may queue: with admission on, the surplus
            // waits here instead of being refused there.
            admission.maxLimit = min(settings.int("admission.max-calls"), gatewayConfig.batcher.maxQueued)
            admission.minLimit = min(admission.minLimit, admission.maxLimit)
            admission.initialLimit = min(admission.initialLimit, admission.maxLimit)
            handlerConfig.admissions = LoopAdmissions(group: group, configuration: admission)
        }
        let address = HostPort(settings.string("gateway.listen"))!
        let rest = grpcOnly ? nil : GatewayHTTPService(gateway: gateway, grpc: handlerConfig)
        let server: GatewayServer
        do {
            server = try await GatewayServer.start(host: address.host, port: address.port, service: gateway, rest: rest,
                                                   group: group, configuration: handlerConfig, limits: limits,
                                                   tls: tls, slots: slots, logger: logger)
        } catch {
            throw PlainError.bindFailure(error, address: address, setting: "gateway.listen", settings: settings)
        }
        lifecycle.started("listener") {
            // Not ready from here on (`/readyz` 503, health NOT_SERVING), then stop accepting,
            // GOAWAY, and let calls and batches in flight finish within the drain.
            gateway.readiness.set(.draining)
            await server.shutdown(grace: drain.remaining)
        }
        if let endpoint = try await metricsSetup.startEndpoint(metrics, group: group, logger: logger) {
            lifecycle.started("metrics listener") { await endpoint.shutdown() }
        }
        gateway.readiness.set(.ready)
        logger.info("gateway listening", metadata: [
            "address": "\(tls == nil ? "http" : "https")://\(address.host):\(server.port)",
            "serves": "\(grpcOnly ? "gRPC" : "gRPC, gRPC-Web, REST \(core.basePath), health \(gatewayConfig.healthPath), readiness \(gatewayConfig.readyPath)")",
            "upstream": "\(upstreamAddresses.map { "http://\($0.host):\($0.port)\(core.basePath)" }.joined(separator: ", "))",
            "store_id": "\(gateway.stores.store.map { "\($0)" } ?? "(not yet known)")",
        ])
    }

    /// The TLS context of `gateway.tls-cert` and `gateway.tls-key`, or a start-up error that
    /// says which file is wrong and how.
    static func tlsContext(certificate: String, key: String, http1: Bool, settings: Settings) throws -> NIOSSLContext {
        for (file, setting) in [(certificate, "gateway.tls-cert"), (key, "gateway.tls-key")] {
            guard FileManager.default.isReadableFile(atPath: file) else {
                let why = FileManager.default.fileExists(atPath: file) ? "this user may not read it" : "no such file"
                throw StartupError("cannot read the TLS file \(file) (\(settings.name(setting))): \(why).")
            }
        }
        do {
            _ = try NIOSSLCertificate.fromPEMFile(certificate)
        } catch {
            throw StartupError("the TLS certificate \(certificate) (\(settings.name("gateway.tls-cert"))) is not a PEM certificate chain "
                + "(-----BEGIN CERTIFICATE-----): \(error).")
        }
        do {
            _ = try NIOSSLPrivateKey(file: key, format: .pem)
        } catch {
            throw StartupError("the TLS key \(key) (\(settings.name("gateway.tls-key"))) is not a PEM private key "
                + "(-----BEGIN PRIVATE KEY-----), or it is encrypted: \(error).")
        }
        do {
            return try GatewayServer.tlsContext(certificatePath: certificate, keyPath: key, http1: http1)
        } catch {
            throw StartupError("the TLS key \(key) does not fit the certificate \(certificate) (\(settings.name("gateway.tls-cert")), "
                + "\(settings.name("gateway.tls-key"))): \(error).")
        }
    }
}
