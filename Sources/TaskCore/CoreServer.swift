import ContextModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import HTTPServing

/// Counts requests handed to the service and not yet answered, so a shutdown can wait for them.
final class InFlightCounter: Sendable {
    private let count = NIOLockedValueBox(0)
    func enter() { count.withLockedValue { $0 += 1 } }
    func leave() { count.withLockedValue { $0 -= 1 } }
    var value: Int { count.withLockedValue { $0 } }
}

/// The core's service as the HTTP/1.1 handler sees it; counts what is in flight.
struct CoreResponder: RESTResponder {
    let service: ContextService
    let inFlight: InFlightCounter

    func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse) {
        if service.isBatchRequest(method: method, target: target) {
            let limit = service.configuration.maxBatchBytes
            return (limit, RESTResponse(.batchTooLarge(limit: limit)))
        }
        let limit = service.configuration.limits.maxBytes
        return (limit, RESTResponse(.payloadTooLarge(limit: limit)))
    }

    func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
        let promise = eventLoop.makePromise(of: RESTResponse.self)
        inFlight.enter()
        let service = self.service, inFlight = self.inFlight
        // README, "Tracing": the caller's traceparent continued (a malformed one ignored).
        let started = NIODeadline.now().uptimeNanoseconds
        var random = SystemRandomNumberGenerator()
        let trace = TraceContext(continuing: request.headers.first(name: "traceparent").flatMap(TraceParent.init),
                                 using: &random)
        promise.completeWithTask {
            defer { inFlight.leave() }
            let response = await service.handle(request)
            service.observe(request, response, trace: trace, startedNanos: started)
            return response
        }
        return promise.futureResult
    }
}

/// The task core's HTTP/1.1 server: keep-alive and pipelining (the gateway relies on both).
public final class CoreServer: Sendable {
    public let localAddress: SocketAddress
    private let channel: any Channel
    private let inFlight: InFlightCounter
    private let logger: Logger

    private init(channel: any Channel, inFlight: InFlightCounter, logger: Logger) {
        self.channel = channel
        self.localAddress = channel.localAddress!
        self.inFlight = inFlight
        self.logger = logger
    }

    /// The bound port (useful with port 0).
    public var port: Int { localAddress.port ?? 0 }

    public static func start(
        host: String, port: Int, service: ContextService, group: any EventLoopGroup,
        limits: ConnectionLimits = .defaults, slots: ConnectionSlots? = nil, logger: Logger = Logger(label: "cs.core.http")
    ) async throws -> CoreServer {
        let inFlight = InFlightCounter()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler { error, unreported in
                        logger.warning("cannot accept connections: pausing the listener", metadata: [
                            "error": "\(error)", "failed-since-last-report": "\(unreported)"])
                    })
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                if let slots, !slots.admit(channel, report: { limit in
                    logger.warning("connection limit reached: closing new connections", metadata: ["limit": "\(limit)"])
                }) {
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(HTTP1Deadlines(limits: limits))
                    // No pipelining assistance: PipelinedHTTPHandler orders pipelined answers
                    // itself while their requests run concurrently.
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false,
                                                         withEncoderConfiguration: .init(),
                                                         withDecoderLimitConfiguration: limits.http1Decoder)
                    try sync.addHandler(PipelinedHTTPHandler(responder: CoreResponder(service: service, inFlight: inFlight),
                                                             limits: limits))
                }
            }
            .bind(host: host, port: port)
            .get()
        return CoreServer(channel: channel, inFlight: inFlight, logger: logger)
    }

    /// Stops accepting connections, then waits (up to `grace`) for requests already with the
    /// store to be answered. A write the store committed is durable whether or not its answer
    /// got out; this only spares clients needless errors.
    public func shutdown(grace: TimeAmount = .seconds(5)) async {
        try? await channel.close()
        let deadline = NIODeadline.now() + grace
        while inFlight.value > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        if inFlight.value > 0 {
            logger.warning("shutdown with requests still in flight", metadata: ["count": "\(inFlight.value)"])
        }
    }
}
