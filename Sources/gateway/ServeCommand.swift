import ArgumentParser
import ContextModel
import Gateway
import GatewayHTTP2
import HTTPServing
import Logging
import NIOCore
import NIOPosix
import Observability
import TaskCore

/// `gateway serve` (the default): the gRPC front end, with an embedded task core on a SQLite
/// file unless `--upstream` points at an external core. Even embedded, the gateway reaches
/// the core over its HTTP/1.1 socket, through the same upstream code as in production.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway (gRPC, gRPC-Web and REST on one port), with an embedded task core unless --upstream is given."
    )

    @Option(help: "Address for every client (gRPC over HTTP/2; REST, gRPC-Web and health over HTTP/1.1 or HTTP/2), host:port.")
    var listen: String = "127.0.0.1:50051"

    @Option(help: "External task cores, host:port[,host:port…]: calls spread over them (least outstanding); a failing one is ejected and probed back. Without it, a core runs in this process.")
    var upstream: String?

    @Option(help: "Where the embedded core listens (REST clients can use it too).")
    var coreListen: String = "127.0.0.1:8090"

    @OptionGroup(title: "Embedded core")
    var core: CoreOptions

    @Option(help: "TLS certificate chain (PEM). With --tls-key: serve TLS (ALPN h2 and http/1.1) instead of cleartext.")
    var tlsCert: String?

    @Option(help: "TLS private key (PEM).")
    var tlsKey: String?

    @Option(help: "Largest request message, bytes.")
    var maxMessageBytes: Int = GRPCServerHandler.Configuration.defaults.maxMessageBytes

    @Option(help: "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS announced to clients.")
    var maxConcurrentStreams: UInt32 = HTTP2Settings.defaults.maxConcurrentStreams

    @Option(help: "HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE, bytes.")
    var initialWindowSize: UInt32 = HTTP2Settings.defaults.initialWindowSize

    @Option(help: "Calls one HTTP/2 connection may cancel (RST_STREAM after a complete request) at once; past it and --cancelled-calls-per-second: GOAWAY ENHANCE_YOUR_CALM.")
    var cancelledCallsBurst: Int = GRPCServerHandler.Configuration.defaults.cancelledCallsBurst

    @Option(help: "Cancelled calls per second per HTTP/2 connection after the burst.")
    var cancelledCallsPerSecond: Int = GRPCServerHandler.Configuration.defaults.cancelledCallsPerSecond

    @Option(help: "Request bytes one HTTP/2 connection may buffer for requests not yet complete, its connection window included; a stream needing more gets RESOURCE_EXHAUSTED.")
    var maxBufferedRequestBytesPerConnection: Int = GRPCServerHandler.Configuration.defaults.maxBufferedRequestBytesPerConnection

    @Option(help: "Request bytes the whole process may buffer for requests not yet complete; a chunk past it resets its stream (RESOURCE_EXHAUSTED).")
    var maxBufferedRequestBytes: Int = 256 << 20

    @OptionGroup(title: "Connections (the gateway's port and the embedded core's)")
    var connections: ConnectionOptions

    @OptionGroup(title: "Metrics (the gateway's and the embedded core's)")
    var observability: ObservabilityOptions

    @Option(help: "Upstream connections per event loop.")
    var upstreamConnections: Int = 16

    @Flag(help: "Send every call on its own (vendor mode) instead of batching toward the core.")
    var noBatching = false

    @Option(help: "Calls per batch at most.")
    var batchMaxItems: Int = ContextGateway.Configuration().batchMaxItems

    @Option(help: "How long a call may wait for companions while batches are in flight, microseconds.")
    var batchMaxDelayMicros: Int64 = 500

    @Option(help: "Batches in flight per event loop (default: one per core address).")
    var batchMaxInFlight: Int?

    @Option(help: "Calls waiting per event loop before new ones are refused (RESOURCE_EXHAUSTED).")
    var maxQueued: Int = ContextGateway.Configuration().maxQueued

    @Flag(help: "Make no idempotency keys for writes that come without one: a batch lost with its connection then fails UNAVAILABLE instead of being resent.")
    var noGatewayKeys = false

    @Flag(help: "Serve native gRPC only: no REST, gRPC-Web or HTTP/1.1 on the gateway's port.")
    var grpcOnly = false

    @Option(help: "GET here answers 200 {\"status\":\"SERVING\"} or 503 (for load balancers).")
    var healthPath: String = ContextGateway.Configuration().healthPath

    @Option(name: .customLong("cors-origin"), help: "An origin browsers may call from (gRPC-Web, REST); repeat it, or '*' for any. None: CORS is off.")
    var corsOrigins: [String] = []

    @Option(help: "REST calls: how long to wait for the core before answering 504, milliseconds.")
    var restTimeoutMillis: Int64 = 30_000

    func validate() throws {
        let upstreams = upstream.map { $0.split(separator: ",").map { ("--upstream", String($0)) } } ?? []
        for (name, value) in [("--listen", listen), ("--core-listen", coreListen)] + upstreams {
            guard HostPort(value) != nil else { throw ValidationError("\(name) must be host:port, got '\(value)'") }
        }
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard healthPath.hasPrefix("/") else { throw ValidationError("--health-path must start with /") }
        guard maxMessageBytes > 0, restTimeoutMillis > 0, upstreamConnections > 0, batchMaxItems > 0, (batchMaxInFlight ?? 1) > 0, maxQueued > 0,
              batchMaxDelayMicros >= 0, cancelledCallsBurst > 0, cancelledCallsPerSecond >= 0 else {
            throw ValidationError("--max-message-bytes, --upstream-connections and the batch options must be positive")
        }
        guard maxBufferedRequestBytesPerConnection >= maxMessageBytes + 5 + 65_535, maxBufferedRequestBytes > 0 else {
            throw ValidationError("--max-buffered-request-bytes-per-connection must hold one whole message and 64 KiB more (at least \(maxMessageBytes + 5 + 65_535)); --max-buffered-request-bytes must be positive")
        }
        try core.validate()
        try observability.validate()
    }

    func run() async throws {
        let termination = TerminationSignal.install()
        MallocTuning.apply()
        bootstrapLogging(core.logLevel)
        let logger = Logger(label: "cs.gateway")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: core.threads)
        let metrics = observability.makeMetrics()

        // The core: embedded, or the one named.
        var embedded: (server: CoreServer, store: any TaskStore, purger: KeyPurger)?
        let upstreamAddresses: [HostPort]
        if let upstream {
            upstreamAddresses = upstream.split(separator: ",").map { HostPort(String($0))! }
        } else {
            let store = try await core.makeStore(group: group, logger: logger)
            let address = HostPort(coreListen)!
            let service = ContextService(store: store, configuration: core.coreConfiguration, logger: logger,
                                         metrics: metrics.map { CoreMetrics(registry: $0.registry) })
            let server = try await CoreServer.start(host: address.host, port: address.port, service: service, group: group,
                                                    limits: connections.limits)
            embedded = (server, store, KeyPurger(store: store))
            upstreamAddresses = [HostPort(host: address.host, port: server.port)]
            logger.info("task core listening", metadata: [
                "address": "http://\(address.host):\(server.port)\(core.basePath)", "store": "\(core.storeDescription)",
                "store_id": "\(store.identity.id)",
            ])
        }

        var upstreamConfig = UpstreamPool.Configuration(addresses: upstreamAddresses.map { ($0.host, $0.port) })
        upstreamConfig.maxConnections = upstreamConnections
        var gatewayConfig = ContextGateway.Configuration()
        gatewayConfig.basePath = core.basePath
        gatewayConfig.limits = core.coreConfiguration.limits
        gatewayConfig.batching = !noBatching
        gatewayConfig.batchMaxItems = batchMaxItems
        gatewayConfig.batchMaxDelay = .microseconds(batchMaxDelayMicros)
        gatewayConfig.batchMaxInFlight = batchMaxInFlight
        gatewayConfig.maxQueued = maxQueued
        gatewayConfig.authTokens = core.coreConfiguration.authTokens  // refuse at the gateway as the core would
        gatewayConfig.restTimeout = .milliseconds(restTimeoutMillis)
        gatewayConfig.healthPath = healthPath
        gatewayConfig.corsAllowedOrigins = corsOrigins
        gatewayConfig.maxMessageBytes = maxMessageBytes
        gatewayConfig.gatewayKeys = !noGatewayKeys
        gatewayConfig.metrics = metrics != nil
        let gateway = ContextGateway(group: group, upstream: upstreamConfig, configuration: gatewayConfig, logger: logger)
        // Cores of different stores would hand out the same ids: refuse to start over them.
        let stores: [(address: String, answer: StoreAnswer?)]
        do {
            stores = try await gateway.verifyStores()
        } catch {
            if let embedded {
                await embedded.server.shutdown()
                await embedded.purger.stop()
                try? await embedded.store.close()
            }
            try? await group.shutdownGracefully()
            throw StartupError("\(error)")
        }
        if upstreamAddresses.count > 1, stores.contains(where: { $0.answer == .anonymous }) {
            logger.warning("several task cores that do not report their store: make sure they share one", metadata: [
                "cores": "\(stores.map(\.address).joined(separator: ", "))",
            ])
        }

        var handlerConfig = GRPCServerHandler.Configuration()
        handlerConfig.maxMessageBytes = maxMessageBytes
        handlerConfig.http2.maxConcurrentStreams = maxConcurrentStreams
        handlerConfig.http2.initialWindowSize = initialWindowSize
        handlerConfig.http2.maxHeaderListSize = UInt32(connections.limits.maxHeaderListSize)
        handlerConfig.http2.maxHeaderFields = connections.limits.maxHeaderFields
        handlerConfig.prefaceTimeout = connections.limits.handshakeTimeout
        handlerConfig.idleTimeout = connections.limits.idleTimeout
        handlerConfig.cancelledCallsBurst = cancelledCallsBurst
        handlerConfig.cancelledCallsPerSecond = cancelledCallsPerSecond
        handlerConfig.maxBufferedRequestBytesPerConnection = maxBufferedRequestBytesPerConnection
        handlerConfig.processRequestBudget = ProcessRequestBudget(maxBytes: maxBufferedRequestBytes)
        handlerConfig.observers = gateway.observers
        metrics?.addCollector { await gateway.renderMetrics() }
        let metricsEndpoint = try await observability.startEndpoint(metrics, group: group, logger: logger)
        let tls = try tlsCert.map { try GatewayServer.tlsContext(certificatePath: $0, keyPath: tlsKey!, http1: !grpcOnly) }
        let address = HostPort(listen)!
        let rest = grpcOnly ? nil : GatewayHTTPService(gateway: gateway)
        let server = try await GatewayServer.start(host: address.host, port: address.port, service: gateway, rest: rest,
                                                   group: group, configuration: handlerConfig, limits: connections.limits,
                                                   tls: tls, logger: logger)
        logger.info("gateway listening", metadata: [
            "address": "\(tls == nil ? "http" : "https")://\(address.host):\(server.port)",
            "serves": "\(grpcOnly ? "gRPC" : "gRPC, gRPC-Web, REST \(core.basePath), health \(healthPath)")",
            "upstream": "\(upstreamAddresses.map { "http://\($0.host):\($0.port)\(core.basePath)" }.joined(separator: ", "))",
            "store_id": "\(gateway.stores.store.map { "\($0)" } ?? "(not yet known)")",
        ])

        await termination.wait()
        logger.info("shutting down: draining connections")
        await server.shutdown()
        await metricsEndpoint?.shutdown()
        await gateway.close(group: group)
        if let embedded {
            await embedded.server.shutdown()
            await embedded.purger.stop()
            try await embedded.store.close()
        }
        try await group.shutdownGracefully()
    }
}
