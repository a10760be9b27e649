import ContextModel
import GRPCServer
import Logging
import NIOCore

/// The gRPC service of the gateway: each call is decoded and validated (`Codec`), sent to
/// the task core as its canonical REST call through the event loop's own upstream pool, and
/// the core's answer is mapped back (`Codec.encodeResponse`, or a status through the one
/// HTTP ⇄ gRPC table of `GRPCStatus`). Everything happens on the connection's event loop.
public final class ContextGateway: GRPCService {
    public struct Configuration: Sendable {
        /// Where the core serves the API.
        public var basePath = RESTRoute.defaultBasePath
        /// The core's body limits, applied to extensions before anything is sent.
        public var limits = JSONLimits.defaults
        /// Batch calls toward the core (its group-commit extension); false: every call on
        /// its own (vendor mode, for a core without the extension).
        public var batching = true
        /// The batcher's knobs (its queue bound applies in vendor mode too).
        public var batcher = BatcherConfiguration()
        /// REST: bearer tokens checked at the gateway, in the core's order, before anything
        /// is sent (set the core's tokens here too for identical refusals); empty: the core
        /// alone checks.
        public var authTokens: [String] = []
        /// REST: how long a call may wait for the core before a 504 (gRPC calls carry their
        /// own `grpc-timeout`).
        public var restTimeout: TimeAmount = .seconds(30)
        /// `GET` here answers 200 `{"status":"SERVING"}` or 503 (load balancers' health check).
        public var healthPath = "/healthz"
        /// `GET` here answers 200 `{"status":"READY"}` once started and while a core can be
        /// reached, else 503 (`Readiness`): not before start, not while draining.
        public var readyPath = "/readyz"
        /// Origins allowed by CORS (browsers: gRPC-Web and REST); `*` allows any. Empty: none.
        public var corsAllowedOrigins: [String] = []
        /// Give every write without a client key a key of the gateway's, so that a batch lost
        /// with its connection can be resent (README, "Exactly once"). Off: only the clients'
        /// keys travel, and a lost batch fails UNAVAILABLE.
        public var gatewayKeys = true
        /// Count calls, batches and upstream events per event loop for `renderMetrics`
        /// (README, "Metrics"); `gateway serve` turns it on with `--metrics-listen`. Traces and
        /// the failed-call log lines do not depend on it.
        public var metrics = false
        public init() {}
    }

    /// The upstream of one event loop: its connections and the batcher in front of them.
    package struct Upstream {
        package var pool: UpstreamPool
        package var batcher: UpstreamBatcher
        var keys: GatewayKeys?
        /// Traces, metrics and log lines of this loop's calls.
        package var observer: GatewayObserver

        /// The idempotency key a write goes upstream with (README, "Exactly once"): the
        /// client's (checked: 400 / INVALID_ARGUMENT when malformed), or, when the cores keep
        /// keys, one made here so that the gateway can resend it after a broken connection.
        /// Reads carry none.
        package func key(for route: RESTRoute, clientKey: String?) throws(ContextError) -> (text: String, madeHere: Bool)? {
            guard route.method != "GET" else { return nil }
            if let key = try RESTChecks.idempotencyKey(clientKey) { return (key, false) }
            guard let keys, pool.storeKeepsKeys else { return nil }
            return (keys.next(), true)
        }
    }

    /// One upstream per event loop, each touched only on its own loop (`handle` runs there),
    /// so sharing the table across threads is safe: it is never mutated after `init`.
    package struct Pools: @unchecked Sendable {
        package var byLoop: [ObjectIdentifier: Upstream]
    }

    package let pools: Pools
    package let configuration: Configuration
    /// For `GRPCServerHandler.Configuration.observers`: the same per-loop observers.
    public let observers: GatewayObservers
    private let logger: Logger
    /// Keeps every upstream connection on cores of one store (README, "Scale-out").
    public let stores: StoreIdentityGuard
    /// Set by whoever runs the gateway: ready once everything started, draining on stop.
    public let readiness = Readiness()
    private let upstream: UpstreamPool.Configuration
    private let group: any EventLoopGroup

    public init(group: any EventLoopGroup, upstream: UpstreamPool.Configuration, configuration: Configuration = .init(),
                logger: Logger = Logger(label: "cs.gateway")) {
        var upstream = upstream
        upstream.basePath = configuration.basePath
        if configuration.batching {
            // One batch per connection at a time: a second one pipelined behind it would wait
            // for the first (a core answers pipelined writes in order), while on a connection
            // of its own it goes to the least busy core (`PoolStateMachine.coreToOpen`), so
            // the batches in flight spread over every core of the store.
            upstream.pipelineDepth = 1
        }
        let stores = upstream.identityGuard ?? StoreIdentityGuard()
        upstream.identityGuard = stores
        self.stores = stores
        self.upstream = upstream
        self.group = group
        var byLoop: [ObjectIdentifier: Upstream] = [:]
        let keyPrefix = GatewayKeys.processPrefix()
        for loop in group.makeIterator() {
            let pool = UpstreamPool(eventLoop: loop, configuration: upstream, logger: logger)
            // Vendor mode (batching off) still queues through the batcher: its bound,
            // deadline checks and shedding apply; only the sending differs.
            let batcher = UpstreamBatcher(eventLoop: loop, pool: pool, basePath: configuration.basePath,
                                          configuration: configuration.batcher, cores: upstream.addresses.count,
                                          batchSupported: configuration.batching, logger: logger)
            let observer = GatewayObserver(metrics: configuration.metrics ? GatewayLoopMetrics() : nil, logger: logger)
            batcher.metrics = observer.metrics
            pool.metrics = observer.metrics
            byLoop[ObjectIdentifier(loop)] = Upstream(pool: pool, batcher: batcher, keys: configuration.gatewayKeys ? GatewayKeys(prefix: keyPrefix, loop: byLoop.count) : nil, observer: observer)
        }
        self.pools = Pools(byLoop: byLoop)
        self.observers = GatewayObservers(byLoop: byLoop.mapValues(\.observer))
        self.configuration = configuration
        self.logger = logger
    }

    public func serves(path: String) -> Bool {
        RPCMethod(path: path) != nil || ServerReflection.serves(path: path)
    }

    /// Health and reflection (`/grpc.…`) are answered here: no admission slot.
    public func needsAdmission(path: String) -> Bool {
        !path.utf8.starts(with: "/grpc.".utf8)
    }

    public func isMessageStream(path: String) -> Bool {
        ServerReflection.serves(path: path)
    }

    public func respond(toStreamMessage message: ByteBuffer, path: String) -> Result<GRPCResponseMessage, GRPCStatus> {
        ServerReflection.answer(Array(message.readableBytesView))
    }

    public func handle(_ request: GRPCRequest, call responder: GRPCCall, eventLoop: any EventLoop) {
        guard let method = RPCMethod(path: request.path), let upstream = pools.byLoop[ObjectIdentifier(eventLoop)] else {
            if ServerReflection.serves(path: request.path) {
                // gRPC-Web (no client streaming): one request, one response.
                switch ServerReflection.answer(Array(request.message.readableBytesView)) {
                case .success(let message): return responder.succeed(message)
                case .failure(let status): return responder.fail(status)
                }
            }
            responder.fail(GRPCStatus(code: .unimplemented, message: "unknown method \(request.path)", exception: nil))
            return
        }
        switch method {
        case .healthCheck:
            return healthCheck(request, responder: responder, pool: upstream.pool)
        case .healthWatch:
            // Server streaming is not served; the health protocol lets Watch be unimplemented.
            return responder.fail(GRPCStatus(code: .unimplemented, message: "Watch is not served; use Check", exception: nil))
        default:
            break
        }
        let call: UpstreamCall
        do {
            call = try request.message.withUnsafeReadableBytes { bytes throws(GRPCStatus) in
                try Codec.decodeRequest(method, bytes, limits: configuration.limits)
            }
        } catch {
            return responder.fail(error)
        }
        let key: (text: String, madeHere: Bool)?
        do throws(ContextError) {
            key = try upstream.key(for: call.route, clientKey: request.idempotencyKey)
        } catch {
            return responder.fail(GRPCStatus(error))
        }
        // Always set by the HTTP/2 handler and the gateway's HTTP side; a new trace otherwise.
        let trace = request.trace ?? upstream.observer.traceContext(continuing: nil)
        let item = BatchItem(call.route, tenant: request.tenant, authorization: request.authorization, body: call.body,
                             idempotencyKey: key?.text, keyMadeByGateway: key?.madeHere ?? false, keyIsFresh: true,
                             trace: trace.outgoing)
        let (ticket, answer) = upstream.batcher.enqueue(item, deadline: request.deadline)
        // Reset by the client or past its deadline: out of the queue at once, never sent
        // (issue 11, item 4: reset Start Tasks were still stored).
        let batcher = upstream.batcher
        responder.onCancel { batcher.cancel(ticket) }
        answer.assumeIsolated().whenComplete { result in
            guard responder.isActive else { return }  // timed out or cancelled meanwhile
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                do throws(GRPCStatus) {
                    // Written once, behind its gRPC prefix: this buffer is the response body.
                    let framed = try Codec.encodeResponse(method, location: response.location, body: response.body)
                    let message = GRPCResponseMessage(framed: framed)
                    if response.replayed {
                        responder.succeed(message, trailers: [("idempotent-replayed", "true")])
                    } else {
                        responder.succeed(message)
                    }
                } catch {
                    responder.fail(error)
                }
            case .success(let response):
                responder.fail(GRPCStatus(response.contextError))
            case .failure(let error):
                responder.fail(Self.status(for: error))
            }
        }
    }

    /// What a call that got no answer from the core tells its client.
    static func status(for error: any Error) -> GRPCStatus {
        switch error as? UpstreamError {
        case .deadlineExceeded:
            return GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded before the call was sent", exception: nil)
        case .overloaded(let message):
            // Shed at once, nothing sent: come back later (REST: 429 + Retry-After).
            return GRPCStatus(code: .resourceExhausted, message: message, exception: "OverloadedException")
        case .rejected(let error):
            return GRPCStatus(error)
        case .unavailable(let message), .notSent(let message):
            return GRPCStatus(code: .unavailable, message: message, exception: "OverloadedException")
        case nil:
            return GRPCStatus(code: .unavailable, message: "\(error)", exception: "OverloadedException")
        }
    }

    /// grpc.health.v1.Health/Check, per service: the empty name (the server) and
    /// `genesys.cs.v1.ContextServices` are SERVING when ready (`Readiness`: started, not
    /// draining) and a task core can be reached; server reflection, which needs no core, when
    /// ready. Any other name is NOT_FOUND (health checking protocol).
    private func healthCheck(_ request: GRPCRequest, responder: GRPCCall, pool: UpstreamPool) {
        let service: String
        do {
            service = try request.message.withUnsafeReadableBytes { bytes throws(GRPCStatus) in
                try Codec.decodeHealthCheckRequest(bytes)
            }
        } catch {
            return responder.fail(error)
        }
        let ready = readiness.isReady
        if ServerReflection.serves(path: "/\(service)/ServerReflectionInfo") {
            return responder.succeed(ready ? Self.serving : Self.notServing)
        }
        guard service.isEmpty || service == "genesys.cs.v1.ContextServices" else {
            return responder.fail(GRPCStatus(code: .notFound, message: "unknown service \(service)", exception: nil))
        }
        pool.isReachable().assumeIsolated().whenSuccess { reachable in
            guard responder.isActive else { return }
            responder.succeed(reachable && ready ? Self.serving : Self.notServing)
        }
    }

    /// HealthCheckResponse { status = 1 (SERVING) | 2 (NOT_SERVING) }: field 1, varint. Framed
    /// once and shared: a response body is only read (its reader index moves in its own copy).
    static let serving: GRPCResponseMessage = [0x08, 1]
    static let notServing: GRPCResponseMessage = [0x08, 2]

    /// Asks every configured core which store it serves, and refuses to start when two
    /// differ: an error naming both addresses and their stores. Cores that cannot be reached
    /// now are checked when they first connect (and ejected if they differ). The store found
    /// becomes the gateway's.
    public func verifyStores(timeout: TimeAmount = .seconds(2)) async throws -> [(address: String, answer: StoreAnswer?)] {
        let loop = group.next()
        var seen: [(address: String, answer: StoreAnswer?)] = []
        for address in upstream.addresses {
            let name = "\(address.host):\(address.port)"
            do {
                let answer = try await UpstreamPool.askStore(host: address.host, port: address.port,
                                                             basePath: configuration.basePath, eventLoop: loop,
                                                             timeout: timeout).get()
                if let other = stores.admit(address: name, answer: answer) {
                    throw UpstreamPool.StoreMismatch(core: name, store: answer, expectedCore: other.address,
                                                     expectedStore: other.answer)
                }
                seen.append((name, answer))
            } catch let mismatch as UpstreamPool.StoreMismatch {
                throw mismatch
            } catch {
                logger.warning("task core not reachable at start; its store is checked when it connects",
                               metadata: ["core": "\(name)", "error": "\(error)"])
                seen.append((name, nil))
            }
        }
        return seen
    }

    /// The gateway's metrics in Prometheus's text format (README, "Metrics"): each event loop
    /// copies its counters on its own loop, then the copies are summed. Empty when metrics
    /// are off.
    public func renderMetrics() async -> [UInt8] {
        guard configuration.metrics else { return [] }
        var total: GatewayLoopMetrics.Snapshot?
        for loop in group.makeIterator() {
            guard let found = pools.byLoop[ObjectIdentifier(loop)], found.observer.metrics != nil else { continue }
            // Touched on its own loop only, inside `submit`.
            let bound = UncheckedSendable(found)
            let snapshot = try? await loop.submit {
                let upstream = bound.value
                return upstream.observer.metrics!.snapshot(queued: upstream.batcher.queuedCount, upstreamConnections: upstream.pool.openConnections,
                                 ejections: upstream.pool.ejections, coresEjected: upstream.pool.coresEjected,
                                 resent: upstream.batcher.resent, cancelledBeforeSend: upstream.batcher.cancelledBeforeSend)
            }.get()
            guard let snapshot else { continue }
            if total == nil { total = snapshot } else { total!.add(snapshot) }
        }
        return total?.render() ?? []
    }

    private struct UncheckedSendable<Value>: @unchecked Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    /// Closes every upstream connection.
    public func close(group: any EventLoopGroup) async {
        for loop in group.makeIterator() {
            guard let upstream = pools.byLoop[ObjectIdentifier(loop)] else { continue }
            try? await loop.submit { upstream.pool.close() }.get()
        }
    }
}

extension ContextGateway {
    /// Whether `target` names a method of a gRPC service in proto/ (the generated table), so
    /// that the HTTP side sends it to the gRPC server rather than the REST bridge.
    package static func isRPCPath(_ target: String) -> Bool {
        RPCMethod.isRPCPath(target)
    }
}
