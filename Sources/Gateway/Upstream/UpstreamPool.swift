import ContextModel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The connections of one event loop to the task core(s): keep-alive HTTP/1.1 connections
/// with requests pipelined on them, chosen by `PoolStateMachine` (least outstanding across
/// cores; reconnect with capped, jittered backoff; a core that keeps failing is ejected and
/// probed back). This class only carries out its actions, on its own event loop: no lock, no
/// thread hop. A call that cannot be placed fails UNAVAILABLE at once, never hangs; calls
/// lost with a connection fail UNAVAILABLE and are never resent (a start is not idempotent).
public final class UpstreamPool {
    public struct Configuration: Sendable {
        /// The cores, host and port each; calls spread over them.
        public var addresses: [(host: String, port: Int)]
        /// Connections per core per event loop. A core runs the writes pipelined on one
        /// connection one after another (RFC 9112 §9.3.2), so concurrency comes from
        /// connections (and from batching).
        public var maxConnections = 16
        /// Requests in flight on one connection before another is preferred or opened.
        public var pipelineDepth = 2
        public var connectTimeout: TimeAmount = .seconds(2)
        /// Reconnect backoff: exponential from `backoffBase`, capped at `backoffMax`, with
        /// full jitter; a core is ejected after `ejectAfterFailures` failures in a row.
        public var backoffBase: TimeAmount = .milliseconds(50)
        public var backoffMax: TimeAmount = .seconds(5)
        public var ejectAfterFailures = 3
        /// Calls waiting for a connection before new ones are refused.
        public var maxWaiting = 1024
        /// Where the cores serve the API: every new connection first asks `GET {base}/store`.
        public var basePath = RESTRoute.defaultBasePath
        /// Keeps every connection on cores of one store (shared by every event loop's pool);
        /// nil: no check (tests of the pool alone).
        public var identityGuard: StoreIdentityGuard?

        public init(addresses: [(host: String, port: Int)]) {
            precondition(!addresses.isEmpty, "at least one core address")
            self.addresses = addresses
        }

        public init(host: String, port: Int) {
            self.init(addresses: [(host, port)])
        }
    }

    private typealias Machine = PoolStateMachine<SystemRandomNumberGenerator>

    public let eventLoop: any EventLoop
    private let configuration: Configuration
    private let logger: Logger
    private var machine: Machine
    private var channels: [Machine.ConnectionID: any Channel] = [:]
    /// Connections we closed ourselves (their close is not a failure).
    private var closing: Set<Machine.ConnectionID> = []
    private var waiting: [Machine.RequestID: Waiting] = [:]

    /// A call waiting for a connection; with a deadline, the timer that gives it up.
    private struct Waiting {
        var request: UpstreamRequest
        var promise: EventLoopPromise<UpstreamResponse>
        var expiry: Scheduled<Void>?
    }
    private var timer: Scheduled<Void>?
    private var flushPending: [Machine.ConnectionID: any Channel] = [:]
    /// The last core that answered the handshake keeps idempotency keys: writes may carry
    /// keys made here and be resent after a broken connection (README, "Exactly once").
    private(set) var storeKeepsKeys = false
    /// Cores whose last handshake showed another store: never counted as reachable.
    private var foreign: Set<Int> = []
    /// Connections that have carried no call yet: one that closes like that (a server that
    /// closes after the handshake) counts as a failure, or the pool would reconnect at once,
    /// again and again.
    private var unused: Set<Machine.ConnectionID> = []

    public init(eventLoop: any EventLoop, configuration: Configuration, logger: Logger = Logger(label: "cs.gateway.upstream")) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
        self.machine = Machine(
            coreCount: configuration.addresses.count,
            configuration: Machine.Configuration(configuration),
            generator: SystemRandomNumberGenerator())
    }

    private static var now: UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Sends one call. Must be called on `eventLoop`; the future completes there too.
    ///
    /// With a `deadline`, a call still waiting for a connection when it passes leaves the
    /// queue and fails `deadlineExceeded`: it is never sent, so a call its client was told
    /// had timed out does not reach the core afterwards. Once written it is not recalled.
    public func send(_ request: UpstreamRequest, deadline: NIODeadline?) -> EventLoopFuture<UpstreamResponse> {
        eventLoop.preconditionInEventLoop()
        if let deadline, deadline <= .now() {
            return eventLoop.makeFailedFuture(UpstreamError.deadlineExceeded)
        }
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        let admission = machine.request(now: Self.now)
        switch admission.request {
        case .use(let connection):
            write(request, promise, on: connection)
        case .wait(let id):
            let expiry = deadline.map { deadline in
                eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] () -> Void in
                    guard let self else { return }
                    self.expire(id)
                }
            }
            waiting[id] = Waiting(request: request, promise: promise, expiry: expiry)
        case .refuse(let failure):
            metrics?.upstreamRefused &+= 1
            promise.fail(Self.error(failure))
        }
        perform(admission.actions)
        return promise.futureResult
    }

    /// A waiting call's deadline passed: out of the machine's queue, failed, never sent.
    private func expire(_ id: Machine.RequestID) {
        guard machine.cancel(id), let call = waiting.removeValue(forKey: id) else { return }
        call.promise.fail(UpstreamError.deadlineExceeded)
    }

    /// This loop's metrics (README, "Metrics"); nil: off.
    var metrics: GatewayLoopMetrics?
    var openConnections: Int { channels.count }
    var ejections: Int { machine.ejections }
    var coresEjected: Int {
        (0..<machine.coreCount).count { core in
            switch machine.state(ofCore: core) {
            case .ejected, .probing: true
            default: false
            }
        }
    }

    /// Whether a connection to a core is up or can be made now (gRPC health).
    public func isReachable() -> EventLoopFuture<Bool> {
        if channels.values.contains(where: { $0.isActive }) {
            return eventLoop.makeSucceededFuture(true)
        }
        var attempts: [EventLoopFuture<Bool>] = []
        for (core, address) in configuration.addresses.enumerated() where !foreign.contains(core) {
            attempts.append(connect(host: address.host, port: address.port).map { channel in
                channel.close(promise: nil)
                // The core is up: end its backoff or ejection now, so calls stop failing
                // UNAVAILABLE while the health check says SERVING.
                self.perform(self.machine.reachable(core: core, now: Self.now))
                return true
            }.recover { _ in false })
        }
        return EventLoopFuture.whenAllComplete(attempts, on: eventLoop).map { results in
            results.contains { (try? $0.get()) == true }
        }
    }

    /// Closes every connection and refuses what waits (shutdown).
    public func close() {
        perform(machine.shutdown())
        for (id, channel) in channels {
            closing.insert(id)
            channel.close(promise: nil)
        }
    }

    // MARK: Carrying out the machine's actions

    private func perform(_ actions: Machine.Actions) {
        for use in actions.use {
            guard let call = waiting.removeValue(forKey: use.request) else { continue }
            call.expiry?.cancel()
            write(call.request, call.promise, on: use.connection)
        }
        for refusal in actions.refuse {
            metrics?.upstreamRefused &+= 1
            guard let call = waiting.removeValue(forKey: refusal.request) else { continue }
            call.expiry?.cancel()
            call.promise.fail(Self.error(refusal.failure))
        }
        for connect in actions.connect {
            open(connect.connection, core: connect.core, isProbe: connect.isProbe)
        }
        for id in actions.close {
            closing.insert(id)
            channels[id]?.close(promise: nil)
        }
        // `lostInFlight`: the connection's handler already failed those calls UNAVAILABLE.
        if actions.cancelTimer {
            timer?.cancel()
            timer = nil
        }
        if let at = actions.scheduleTimer {
            timer?.cancel()
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(at)) { [weak self] in
                guard let self else { return }
                self.timer = nil
                self.perform(self.machine.timerFired(now: Self.now))
            }
        }
    }

    private func write(_ request: UpstreamRequest, _ promise: EventLoopPromise<UpstreamResponse>, on id: Machine.ConnectionID) {
        guard let channel = channels[id] else {
            // The machine only hands out established connections; if one vanished in between,
            // the call fails like any call lost with its connection.
            promise.fail(UpstreamError.unavailable("the connection to the task core closed"))
            perform(machine.requestFinished(id))
            return
        }
        unused.remove(id)
        promise.futureResult.assumeIsolated().whenComplete { _ in
            self.perform(self.machine.requestFinished(id))
        }
        channel.write((request, promise), promise: nil)
        scheduleFlush(id, channel)
    }

    private func open(_ id: Machine.ConnectionID, core: Int, isProbe: Bool) {
        let address = configuration.addresses[core]
        connect(host: address.host, port: address.port).flatMap { channel in
            // No call goes on a connection before its core has shown which store it serves.
            guard let identityGuard = self.configuration.identityGuard else {
                return self.eventLoop.makeSucceededFuture(channel)
            }
            return Self.handshakeWithKeys(on: channel, basePath: self.configuration.basePath,
                                          timeout: self.configuration.connectTimeout)
                .flatMapErrorThrowing { error in
                    channel.close(promise: nil)
                    throw error
                }
                .flatMapThrowing { (answer, keepsKeys) in
                    if let other = identityGuard.admit(address: "\(address.host):\(address.port)", answer: answer) {
                        channel.close(promise: nil)
                        throw StoreMismatch(core: "\(address.host):\(address.port)", store: answer,
                                            expectedCore: other.address, expectedStore: other.answer)
                    }
                    self.storeKeepsKeys = keepsKeys
                    return channel
                }
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                self.foreign.remove(core)
                self.channels[id] = channel
                self.unused.insert(id)
                // Taken now: once closed, the handler has left the pipeline.
                let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
                channel.closeFuture.assumeIsolated().whenComplete { _ in
                    self.channels[id] = nil
                    let asked = self.closing.remove(id) != nil
                    let neverUsed = self.unused.remove(id) != nil
                    let withError = !asked && (neverUsed || (handler?.closedByError ?? true))
                    if withError { self.metrics?.upstreamConnectionsLost &+= 1 }
                    self.perform(self.machine.connectionClosed(id, withError: withError, now: Self.now))
                }
                self.perform(self.machine.connected(id, now: Self.now))
            case .failure(let mismatch as StoreMismatch):
                // Loud: this is a deployment error that would hand out the same ids twice.
                self.logger.error("task core ejected: it serves another store", metadata: [
                    "core": "\(mismatch.core)", "store_id": "\(mismatch.store)",
                    "expected_store_id": "\(mismatch.expectedStore)", "first_seen_at": "\(mismatch.expectedCore)",
                ])
                self.foreign.insert(core)
                self.metrics?.upstreamStoreMismatches &+= 1
                self.perform(self.machine.connectFailed(id, eject: true, now: Self.now))
            case .failure(let error):
                self.logger.debug("cannot connect to the task core", metadata: [
                    "core": "\(address.host):\(address.port)", "probe": "\(isProbe)", "error": "\(error)",
                ])
                self.metrics?.upstreamConnectFailures &+= 1
                self.perform(self.machine.connectFailed(id, now: Self.now))
            }
        }
    }

    private func connect(host: String, port: Int) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler(hostHeader: "\(host):\(port)"))
                }
            }
            .connect(host: host, port: port)
    }

    /// Calls made in one event-loop tick go out in one flush per connection.
    private func scheduleFlush(_ id: Machine.ConnectionID, _ channel: any Channel) {
        guard flushPending[id] == nil else { return }
        let first = flushPending.isEmpty
        flushPending[id] = channel
        guard first else { return }
        eventLoop.assumeIsolated().execute {
            let pending = self.flushPending.values
            self.flushPending.removeAll(keepingCapacity: true)
            for channel in pending { channel.flush() }
        }
    }

    /// A core answered the handshake with another store than the gateway's.
    public struct StoreMismatch: Error, CustomStringConvertible {
        public var core: String
        public var store: StoreAnswer
        public var expectedCore: String
        public var expectedStore: StoreAnswer

        public var description: String {
            "task core \(core) serves store \(store), but \(expectedCore) serves store \(expectedStore): "
                + "cores behind one gateway must share one store (several cores need PostgreSQL: --store postgres://…)"
        }
    }

    private static func error(_ failure: Machine.Failure) -> UpstreamError {
        switch failure {
        case .unavailable(.allCoresEjected): .notSent("every task core is failing; retry shortly")
        case .unavailable(.noConnection): .notSent("no connection to the task core could be made")
        case .unavailable(.overloaded): .notSent("too many calls are waiting for a connection to the task core")
        case .unavailable(.shutDown): .notSent("the gateway is shutting down")
        }
    }
}
