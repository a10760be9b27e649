import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// The connections of one event loop to one core: up to `maxConnections` keep-alive
/// connections, each with requests pipelined on it, the least busy chosen per call. Used
/// only on its own event loop, so it needs no lock and calls never hop threads.
///
/// A straightforward pool on purpose: batching (issue 4) replaces what happens inside
/// `send`, not its interface.
public final class UpstreamPool {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        /// Connections per event loop. A core runs the writes pipelined on one connection
        /// one after another (RFC 9112 §9.3.2: only safe requests may run in parallel), so
        /// concurrency toward the core comes from connections until batching (issue 4).
        public var maxConnections = 16
        /// Requests in flight on one connection before another is opened.
        public var pipelineDepth = 2
        public var connectTimeout: TimeAmount = .seconds(2)

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    private final class Connection {
        var channel: (any Channel)?
        var handler: UpstreamConnectionHandler?
        /// Calls waiting for the connection to be established.
        var waiting: [(UpstreamRequest, EventLoopPromise<UpstreamResponse>)] = []
        var closed = false
        var load: Int { (handler?.outstanding ?? 0) + waiting.count }
    }

    public let eventLoop: any EventLoop
    private let configuration: Configuration
    private let logger: Logger
    private var connections: [Connection] = []

    public init(eventLoop: any EventLoop, configuration: Configuration, logger: Logger = Logger(label: "cs.gateway.upstream")) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.logger = logger
    }

    /// Sends one call. Must be called on `eventLoop`; the future completes there too.
    public func send(_ request: UpstreamRequest, deadline: NIODeadline? = nil) -> EventLoopFuture<UpstreamResponse> {
        eventLoop.preconditionInEventLoop()
        if let deadline, deadline <= .now() {
            return eventLoop.makeFailedFuture(UpstreamError.deadlineExceeded)
        }
        let promise = eventLoop.makePromise(of: UpstreamResponse.self)
        let connection = pick()
        if let channel = connection.channel {
            channel.write((request, promise), promise: nil)
            scheduleFlush(channel)
        } else {
            connection.waiting.append((request, promise))
        }
        return promise.futureResult
    }

    /// Whether a connection to the core is up or can be made now (gRPC health).
    public func isReachable() -> EventLoopFuture<Bool> {
        if connections.contains(where: { $0.channel?.isActive == true }) {
            return eventLoop.makeSucceededFuture(true)
        }
        return connect().map { $0.isActive }.recover { _ in false }
    }

    private func pick() -> Connection {
        connections.removeAll { $0.closed }
        let best = connections.min { $0.load < $1.load }
        if let best, best.load < configuration.pipelineDepth || connections.count >= configuration.maxConnections {
            return best
        }
        let connection = Connection()
        connections.append(connection)
        connect().assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                connection.channel = channel
                connection.handler = try? channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
                channel.closeFuture.assumeIsolated().whenComplete { _ in connection.closed = true }
                for (request, promise) in connection.waiting { channel.write((request, promise), promise: nil) }
                connection.waiting.removeAll()
                channel.flush()
            case .failure(let error):
                connection.closed = true
                let failure = UpstreamError.unavailable("cannot connect to the task core at \(self.configuration.host):\(self.configuration.port): \(error)")
                for (_, promise) in connection.waiting { promise.fail(failure) }
                connection.waiting.removeAll()
            }
        }
        return connection
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let host = configuration.host
        let port = configuration.port
        return ClientBootstrap(group: eventLoop)
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

    private var flushPending: [ObjectIdentifier: any Channel] = [:]

    /// Calls made in one event-loop tick go out in one flush per connection.
    private func scheduleFlush(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        guard flushPending[id] == nil else { return }
        let first = flushPending.isEmpty
        flushPending[id] = channel
        guard first else { return }
        eventLoop.assumeIsolated().execute {
            let channels = self.flushPending.values
            self.flushPending.removeAll(keepingCapacity: true)
            for channel in channels { channel.flush() }
        }
    }

    /// Closes every connection (shutdown).
    public func close() {
        for c in connections { c.channel?.close(promise: nil) }
        connections.removeAll()
    }
}
