import ContextModel
internal import Gateway
internal import GRPCServer
internal import NGHTTP2
import HTTPServing
internal import TaskCore

extension Setting {
    /// Every setting of `gateway serve` and `gateway core`, in the order of the example file
    /// (`gateway/gateway.example.json`) and the key table (`gateway/configuration.md`), both
    /// generated from this table (`gateway config example`, `gateway config keys`) and held to
    /// it by `SettingsTableTests`.
    ///
    /// To add a setting (a metrics listener, say): add an entry here, in a section of its own
    /// if none fits (`"metrics.listen"`), read it where it is used (`settings.string("metrics.listen")`),
    /// and run `gateway/scripts/gen-config-docs.sh`. The file key, the environment variable
    /// (`CS_METRICS_LISTEN`), the flag, the help, the unknown-key check and the tests follow
    /// from the entry.
    ///
    /// Defaults come from the configuration types' own `defaults` where they have them, so a
    /// number is stated once in the whole program.
    public static let all: [Setting] = [
        // MARK: gateway: the port every client connects to (`serve` only)
        Setting("gateway.listen", .string, default: .string("127.0.0.1:50051"), unit: "host:port", flag: "--listen", for: [.serve],
                check: .hostPort,
                help: "Where every client connects: gRPC (HTTP/2 with prior knowledge, or TLS with ALPN h2), REST, gRPC-Web and health (HTTP/1.1 or HTTP/2)."),
        Setting("gateway.upstream", .strings, default: .strings([]), unit: "host:port list", flag: "--upstream", for: [.serve],
                check: .hostPorts,
                help: "External task cores; calls go to the least busy. Empty: a task core runs in this process (the core and store sections)."),
        Setting("gateway.tls-cert", .string, default: nil, unset: "cleartext", unit: "path", flag: "--tls-cert", for: [.serve],
                check: .nonEmpty,
                help: "TLS certificate chain (PEM). With gateway.tls-key: serve TLS 1.2+ (ALPN h2, http/1.1) instead of cleartext."),
        Setting("gateway.tls-key", .string, default: nil, unset: "cleartext", unit: "path", flag: "--tls-key", for: [.serve],
                check: .nonEmpty, help: "TLS private key (PEM), with gateway.tls-cert."),
        Setting("gateway.grpc-only", .bool, default: .bool(false), flag: "--grpc-only", for: [.serve], form: .sets(true),
                help: "Native gRPC only on the port: no HTTP/1.1, REST, gRPC-Web or health paths; ALPN h2 only."),
        Setting("gateway.health-path", .string, default: .string(ContextGateway.Configuration().healthPath), unit: "path",
                flag: "--health-path", for: [.serve], check: .absolutePath,
                help: "Liveness: GET answers 200 {\"status\":\"SERVING\"}, or 503 NOT_SERVING when no task core can be reached."),
        Setting("gateway.ready-path", .string, default: .string(ContextGateway.Configuration().readyPath), unit: "path",
                flag: "--ready-path", for: [.serve], check: .absolutePath,
                help: "Readiness: GET answers 200 {\"status\":\"READY\"} once everything started and a core can be reached; 503 before, while draining and when no core can be reached."),
        Setting("gateway.cors-origins", .strings, default: .strings([]), unit: "origins", flag: "--cors-origin", for: [.serve],
                help: "Origins browsers may call from (gRPC-Web, REST); \"*\" for any. Empty: CORS off. The flag may be repeated."),
        Setting("gateway.rest-timeout-millis", .int,
                default: .int(Int(ContextGateway.Configuration().restTimeout.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--rest-timeout-millis", for: [.serve], check: .positive,
                help: "How long a REST call waits for the core before 504 GatewayTimeoutException (gRPC calls bring grpc-timeout)."),
        Setting("gateway.max-message-bytes", .int, default: .int(GRPCServerHandler.Configuration.defaults.maxMessageBytes),
                unit: "bytes", flag: "--max-message-bytes", for: [.serve], check: .positive,
                help: "Largest request message; RESOURCE_EXHAUSTED beyond, refused from its prefix."),
        Setting("gateway.max-concurrent-streams", .int, default: .int(Int(HTTP2Settings.defaults.maxConcurrentStreams)),
                unit: "streams", flag: "--max-concurrent-streams", for: [.serve], check: .range(1...Int(UInt32.max)),
                help: "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection."),
        Setting("gateway.initial-window-size", .int, default: .int(Int(HTTP2Settings.defaults.initialWindowSize)),
                unit: "bytes", flag: "--initial-window-size", for: [.serve],
                check: .range(1...Int(Int32.max)),  // RFC 9113 §6.5.2: at most 2^31-1
                help: "HTTP/2 stream receive window (SETTINGS_INITIAL_WINDOW_SIZE)."),
        Setting("gateway.max-buffered-request-bytes-per-connection", .int,
                default: .int(GRPCServerHandler.Configuration.defaults.maxBufferedRequestBytesPerConnection), unit: "bytes",
                flag: "--max-buffered-request-bytes-per-connection", for: [.serve], check: .positive,
                help: "Request bytes one HTTP/2 connection may buffer for requests not yet complete, its window included; at least gateway.max-message-bytes + 65540. A stream needing more gets RESOURCE_EXHAUSTED."),
        Setting("gateway.max-buffered-request-bytes", .int,
                default: .int(GRPCServerHandler.Configuration.defaults.processRequestBudget.maxBytes), unit: "bytes",
                flag: "--max-buffered-request-bytes", for: [.serve], check: .positive,
                help: "The same for the whole process: a chunk past it resets its stream (RESOURCE_EXHAUSTED)."),
        Setting("gateway.cancelled-calls-burst", .int, default: .int(GRPCServerHandler.Configuration.defaults.cancelledCallsBurst),
                unit: "calls", flag: "--cancelled-calls-burst", for: [.serve], check: .positive,
                help: "Calls one HTTP/2 connection may cancel at once; past it and the rate: GOAWAY ENHANCE_YOUR_CALM."),
        Setting("gateway.cancelled-calls-per-second", .int,
                default: .int(GRPCServerHandler.Configuration.defaults.cancelledCallsPerSecond), unit: "calls/s",
                flag: "--cancelled-calls-per-second", for: [.serve], check: .atLeast(0),
                help: "The rate at which that allowance comes back."),
        Setting("gateway.max-buffered-answer-bytes", .int,
                default: .int(GRPCServerHandler.Configuration.defaults.processAnswerBudget.maxBytes), unit: "bytes",
                flag: "--max-buffered-answer-bytes", for: [.serve], check: .atLeast(65_536),
                help: "Answer bytes the whole process may hold for clients that do not take them; a larger answer (over 16 KiB) past it gets RESOURCE_EXHAUSTED (REST 503)."),

        // MARK: admission: calls in flight per event loop (`serve` only; README, "Limits and timeouts")
        Setting("admission.enabled", .bool, default: .bool(true), flag: "--no-admission", for: [.serve], form: .sets(false),
                help: "Admission control: calls beyond the adaptive limit wait unread, connections served in turn. false: every complete call goes to the batcher at once (batcher.max-queued refuses the surplus)."),
        Setting("admission.target-millis", .int,
                default: .int(Int(AdmissionLimiter.Configuration().targetDelay.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--admission-target-millis", for: [.serve], check: .positive,
                help: "The queueing delay the limit is sized for: calls in flight ≈ completion rate × this (Little's law)."),
        Setting("admission.max-calls", .int, default: .int(AdmissionLimiter.Configuration().maxLimit), unit: "calls",
                flag: "--admission-max-calls", for: [.serve], check: .positive,
                help: "Calls in flight per event loop at most (and never more than batcher.max-queued)."),
        Setting("admission.max-wait-millis", .int,
                default: .int(Int(AdmissionLimiter.Configuration().maxWait.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--admission-max-wait-millis", for: [.serve], check: .positive,
                help: "A call that waited this long for a slot is refused when its turn comes: RESOURCE_EXHAUSTED, REST 429 with Retry-After."),

        // MARK: batcher: calls toward the core, per event loop (`serve` only)
        Setting("batcher.enabled", .bool, default: .bool(ContextGateway.Configuration().batching), flag: "--no-batching",
                for: [.serve], form: .sets(false),
                help: "Batch calls toward the core (its batch extension). false: vendor mode, every call on its own."),
        Setting("batcher.max-items", .int, default: .int(BatcherConfiguration().maxItems), unit: "calls",
                flag: "--batch-max-items", for: [.serve], check: .positive, help: "Calls per batch at most."),
        Setting("batcher.max-delay-micros", .int,
                default: .int(Int(BatcherConfiguration().maxDelay.nanoseconds / 1_000)), unit: "µs",
                flag: "--batch-max-delay-micros", for: [.serve], check: .atLeast(0),
                help: "How long a call may wait for companions while batches are in flight (none in flight: it leaves at once)."),
        Setting("batcher.max-in-flight", .int, default: nil, unset: "one per core address", unit: "batches",
                flag: "--batch-max-in-flight", for: [.serve], check: .positive, help: "Batches in flight per event loop."),
        Setting("batcher.max-queued", .int, default: .int(BatcherConfiguration().maxQueued), unit: "calls",
                flag: "--max-queued", for: [.serve], check: .positive,
                help: "Calls waiting per event loop; beyond: RESOURCE_EXHAUSTED (REST 429 OverloadedException)."),

        // MARK: pool: connections to the cores (`serve` only)
        Setting("pool.connections", .int, default: .int(UpstreamPool.Configuration(addresses: [("localhost", 1)]).maxConnections),
                unit: "connections", flag: "--upstream-connections", for: [.serve], check: .positive,
                help: "Keep-alive connections to the cores per event loop."),
        Setting("pool.gateway-keys", .bool, default: .bool(ContextGateway.Configuration().gatewayKeys),
                flag: "--no-gateway-keys", for: [.serve], form: .sets(false),
                help: "Give writes without an Idempotency-Key one of the gateway's, so a batch lost with its connection is resent. false: it fails UNAVAILABLE."),

        // MARK: core: the task core (`core`, and the embedded core of `serve`)
        Setting("core.listen", .string, default: .string("127.0.0.1:8090"), unit: "host:port", flag: "--core-listen",
                for: [.serve, .core], coreFlag: "--listen", check: .hostPort,
                help: "Where the task core listens (`serve`: the embedded core)."),
        Setting("core.base-path", .string, default: .string(RESTRoute.defaultBasePath), unit: "path", flag: "--base-path",
                for: [.serve, .core], check: .absolutePath, help: "The path every operation lives under."),
        Setting("core.public-base", .string, default: nil, unset: "the base path", unit: "URL or path", flag: "--public-base",
                for: [.serve, .core], check: .nonEmpty,
                help: "What Location headers start with, e.g. https://cs.example.com/genesys/1/cs."),
        Setting("core.max-body", .int, default: .int(JSONLimits.defaults.maxBytes), unit: "bytes", flag: "--max-body",
                for: [.serve, .core], check: .positive, help: "Largest body (413 beyond)."),
        Setting("core.max-depth", .int, default: .int(JSONLimits.defaults.maxDepth), unit: "levels", flag: "--max-depth",
                for: [.serve, .core], check: .positive, help: "Deepest JSON nesting (400 beyond)."),
        Setting("core.auth-tokens", .strings, default: .strings([]), unit: "tokens", flag: "--auth-token",
                for: [.serve, .core], secret: true,
                help: "Bearer tokens: when any, every request needs Authorization: Bearer <one of them> (401 otherwise). The flag may be repeated."),
        Setting("core.batch-endpoint", .bool, default: .bool(CoreConfiguration.defaults.batchEnabled), flag: "--no-batch-endpoint",
                for: [.serve, .core], form: .sets(false),
                help: "Serve the batch extension (POST {base}/batch). false: the core looks like a vendor core."),
        Setting("core.max-batch-items", .int, default: .int(CoreConfiguration.defaults.maxBatchItems), unit: "operations",
                flag: "--max-batch-items", for: [.serve, .core], check: .positive, help: "Most operations in one batch (413 beyond)."),
        Setting("core.max-batch-bytes", .int, default: .int(CoreConfiguration.defaults.maxBatchBytes), unit: "bytes",
                flag: "--max-batch-bytes", for: [.serve, .core], check: .positive, help: "Largest batch body (413 beyond)."),
        Setting("core.idempotency-key-seconds", .int, default: .int(Int(CoreConfiguration.defaults.idempotencyKeyLifetimeSeconds)),
                unit: "s", flag: "--idempotency-key-seconds", for: [.serve, .core], check: .positive,
                help: "How long a client's Idempotency-Key is kept (a retry within it gets the first answer)."),
        Setting("core.gateway-key-seconds", .int, default: .int(Int(CoreConfiguration.defaults.gatewayKeyLifetimeSeconds)),
                unit: "s", flag: "--gateway-key-seconds", for: [.serve, .core], check: .positive,
                help: "How long a key a gateway made for its own resends is kept."),

        // MARK: store: where the core keeps its data
        Setting("store.url", .string, default: nil, unset: "the SQLite file of store.sqlite-path", unit: "URL",
                flag: "--store", for: [.serve, .core], check: .postgresURL,
                help: "A PostgreSQL database instead of SQLite: postgres://user@host:port/database[?sslmode=disable|prefer|require]. Never a password: CS_STORE_PASSWORD or store.password-file."),
        Setting("store.password-file", .string, default: nil, unset: "CS_STORE_PASSWORD from the environment", unit: "path",
                flag: "--store-password-file", for: [.serve, .core], check: .nonEmpty,
                help: "A file whose first line is the PostgreSQL password."),
        Setting("store.max-connections", .int, default: .int(16), unit: "connections", flag: "--store-max-connections",
                for: [.serve, .core], check: .positive, help: "PostgreSQL connections of this process."),
        Setting("store.timeout-millis", .int, default: .int(3000), unit: "ms", flag: "--store-timeout-millis",
                for: [.serve, .core], check: .positive,
                help: "PostgreSQL: how long one store call may wait for a connection and run before it fails 503 (nothing applied)."),
        Setting("store.sqlite-path", .string, default: .string("./data/cs.sqlite"), unit: "path", flag: "--data",
                for: [.serve, .core], check: .nonEmpty,
                help: "The SQLite file, created with its folder on first start."),
        Setting("store.sqlite-synchronous", .choice(SQLiteTaskStore.Configuration.Synchronous.allCases.map(\.rawValue)),
                default: .string(SQLiteTaskStore.Configuration.Synchronous.full.rawValue), flag: "--synchronous",
                for: [.serve, .core],
                help: "full: fsync at every commit (an acknowledged write survives power loss); normal: survives a process crash only; off."),
        Setting("store.memory", .bool, default: .bool(false), flag: "--memory", for: [.serve, .core], form: .sets(true),
                help: "Keep everything in memory instead (not durable: tests and benchmarks only)."),

        // MARK: connections: limits of every accepted connection (the gateway's port and the core's)
        Setting("connections.max-header-list-size", .int, default: .int(ConnectionLimits.defaults.maxHeaderListSize),
                unit: "bytes", flag: "--max-header-list-size", for: [.serve, .core], check: .range(1024...Int(UInt32.max)),
                help: "Largest request head: HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, enforced; HTTP/1.1 431."),
        Setting("connections.max-header-fields", .int, default: .int(ConnectionLimits.defaults.maxHeaderFields), unit: "fields",
                flag: "--max-header-fields", for: [.serve, .core], check: .atLeast(16),
                help: "Most header fields in one request head."),
        Setting("connections.handshake-timeout-millis", .int,
                default: .int(Int(ConnectionLimits.defaults.handshakeTimeout.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--handshake-timeout-millis", for: [.serve, .core], check: .positive,
                help: "From accept to the protocol's opening (TLS, HTTP/2 preface and SETTINGS, first HTTP/1.1 bytes); then close."),
        Setting("connections.request-head-timeout-millis", .int,
                default: .int(Int(ConnectionLimits.defaults.requestHeadTimeout.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--request-head-timeout-millis", for: [.serve, .core], check: .positive,
                help: "HTTP/1.1: a request head's first byte to its end; then close."),
        Setting("connections.request-body-timeout-millis", .int,
                default: .int(Int(ConnectionLimits.defaults.requestBodyTimeout.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--request-body-timeout-millis", for: [.serve, .core], check: .positive,
                help: "HTTP/1.1: a request head to the end of its body; then close."),
        Setting("connections.idle-timeout-seconds", .int,
                default: .int(Int(ConnectionLimits.defaults.idleTimeout.nanoseconds / 1_000_000_000)), unit: "s",
                flag: "--idle-timeout-seconds", for: [.serve, .core], check: .positive,
                help: "Nothing in flight this long: close (HTTP/2: GOAWAY first)."),
        Setting("connections.max-connections", .int, default: nil, unset: "the descriptor limit minus 128", unit: "connections",
                flag: "--max-connections", for: [.serve, .core], check: .positive,
                help: "Client connections the process may hold, both listeners together; one accepted beyond is closed at once (descriptors stay for upstream connections, the store and libdispatch). The soft descriptor limit is raised to the hard one at start."),
        Setting("connections.max-buffered-answer-bytes-per-connection", .int,
                default: .int(ConnectionLimits.defaults.maxBufferedAnswerBytesPerConnection), unit: "bytes",
                flag: "--max-buffered-answer-bytes-per-connection", for: [.serve, .core], check: .atLeast(65_536),
                help: "Answer bytes one connection may hold for a client that does not take them (HTTP/2 window, HTTP/1.1 socket); a larger answer (over 16 KiB) that does not fit gets RESOURCE_EXHAUSTED (REST 503)."),
        Setting("connections.answer-stall-timeout-millis", .int,
                default: .int(Int(ConnectionLimits.defaults.answerStallTimeout.nanoseconds / 1_000_000)), unit: "ms",
                flag: "--answer-stall-timeout-millis", for: [.serve, .core], check: .positive,
                help: "Answers waiting and none taken by the client this long: close (HTTP/2: GOAWAY ENHANCE_YOUR_CALM first)."),

        // MARK: metrics (README, "Metrics")
        Setting("metrics.listen", .string, default: nil, unset: "no metrics", unit: "host:port", flag: "--metrics-listen",
                for: [.serve, .core], check: .hostPort,
                help: "Serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464: a listener of its own, never the public port."),

        // MARK: process, logging, lifecycle
        Setting("process.threads", .int, default: nil, unset: "one per CPU core", unit: "threads", flag: "--threads",
                for: [.serve, .core], check: .range(1...1024), help: "Event loop threads."),
        Setting("logging.level", .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
                default: .string("info"), flag: "--log-level", for: [.serve, .core], help: "swift-log level of what is printed."),
        Setting("lifecycle.drain-timeout-millis", .int, default: .int(10_000), unit: "ms", flag: "--drain-timeout-millis",
                for: [.serve, .core], check: .range(0...3_600_000),
                help: "On SIGTERM or SIGINT: how long calls and batches in flight may take to finish (after GOAWAY) before the remaining connections are closed and the process exits."),
    ]

    /// The table by key.
    public static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    /// The flags of a command, by spelling.
    public static func flags(of command: Command) -> [String: Setting] {
        var flags: [String: Setting] = [:]
        for setting in all {
            if let flag = setting.flags[command] { flags[flag] = setting }
        }
        return flags
    }
}

extension Check {
    public static let postgresURL = Check("postgres://user@host:port/database[?sslmode=disable|prefer|require], without a password") { v in
        guard case .string(let url) = v else { return "not a string" }
        do {
            _ = try PostgresTaskStore.Configuration.parse(url: url, password: nil)
            return nil
        } catch {
            return "\(error)"
        }
    }
}
