import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to the core with requests pipelined on it: answers
/// come back in request order (RFC 9112 §9.3.2), so a FIFO of promises pairs them.
final class UpstreamConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = (UpstreamRequest, EventLoopPromise<UpstreamResponse>)
    typealias OutboundOut = HTTPClientRequestPart

    private var pending = CircularBuffer<EventLoopPromise<UpstreamResponse>>(initialCapacity: 16)
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private let hostHeader: String
    private var failed: UpstreamError?
    /// The connection ended by an error (reset, I/O error, an answer it could not parse),
    /// not by a keep-alive close: it counts toward ejecting the core.
    private(set) var closedByError = false

    init(hostHeader: String) {
        self.hostHeader = hostHeader
    }

    var outstanding: Int { pending.count }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (request, responsePromise) = unwrapOutboundIn(data)
        if let failed {
            responsePromise.fail(failed)
            promise?.fail(failed)
            return
        }
        pending.append(responsePromise)
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "host", value: hostHeader)
        headers.add(name: "content-length", value: String(request.body.readableBytes))
        if request.body.readableBytes > 0 { headers.add(name: "content-type", value: request.contentType ?? "application/json") }
        if let tenant = request.tenant { headers.add(name: "ContactCenterId", value: tenant) }
        if let authorization = request.authorization { headers.add(name: "authorization", value: authorization) }
        if let key = request.idempotencyKey { headers.add(name: "idempotency-key", value: key) }
        if let traceparent = request.traceparent { headers.add(name: "traceparent", value: traceparent) }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.body.readableBytes > 0 {
            // The batch was encoded into this buffer: it goes out as it is (no copy).
            context.write(wrapOutboundOut(.body(.byteBuffer(request.body))), promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            if h.status.code / 100 == 1 { return }  // interim (100 Continue): the final answer follows
            head = h
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let h = head else { return }
            head = nil
            // Handed on as received: the batcher decodes the answer in place.
            let bytes = body ?? ByteBuffer()
            body = nil
            guard let promise = pending.popFirst() else {
                closedByError = true
                fail(context: context, .unavailable("the task core sent an answer nobody asked for"))
                return
            }
            promise.succeed(UpstreamResponse(status: Int(h.status.code), location: h.headers.first(name: "location"), body: bytes,
                                             retryAfter: h.headers.first(name: "retry-after").flatMap { Int($0) },
                                             replayed: h.headers.first(name: "idempotent-replayed") == "true"))
            if !h.isKeepAlive {
                fail(context: context, .unavailable("the task core closed the connection"))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, .unavailable("the connection to the task core closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closedByError = true
        fail(context: context, .unavailable("connection to the task core failed: \(error)"))
    }

    /// Fails every call still waiting on this connection and closes it. Never resent: they
    /// may have been applied (the answer, not the request, was lost).
    private func fail(context: ChannelHandlerContext, _ error: UpstreamError) {
        if failed == nil { failed = error }
        while let promise = pending.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}
