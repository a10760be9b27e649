import ContextModel
import NIOCore
import NIOHTTP1

/// Serves REST on one HTTP/1.1 connection, with keep-alive and pipelining; the task core and
/// the gateway's HTTP/1.1 side both use it, so a REST client sees the same connection
/// behaviour from either.
///
/// RFC 9112 §9.3.2: pipelined requests may be processed in parallel only if they are all
/// safe, and answers go out in request order. So consecutive GETs run concurrently, while a
/// POST or DELETE waits for everything before it and holds back everything after it (a GET
/// pipelined after a start sees the start). Each request gets a sequence number; an answer
/// waits until every earlier one is written, and answers that become writable together share
/// one flush. NIO's `HTTPServerPipelineHandler` serialises every request instead.
///
/// At most `maxPipelined` requests are queued or running per connection: beyond that,
/// reading from the socket pauses until answers go out (backpressure, bounded memory).
public final class PipelinedHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPServerRequestPart
    public typealias OutboundIn = Never
    public typealias OutboundOut = HTTPServerResponsePart

    /// Sent through the pipeline for a graceful shutdown: take no new request, answer those
    /// already read (the last with `Connection: close`), then close.
    public struct Drain: Sendable { public init() {} }

    public static let maxPipelined = 128

    private enum Receiving {
        case idle
        /// Collecting a body within the limit.
        case body(HTTPRequestHead, ByteBuffer)
        /// The body went over the limit: the rest is read and dropped, then 413.
        case discarding(HTTPRequestHead)
        /// No more requests are taken on this connection (an answer with `Connection:
        /// close` is queued); whatever else arrives is ignored.
        case closing
    }

    private let responder: any RESTResponder
    private let limits: ConnectionLimits
    private var receiving = Receiving.idle
    /// The body limit of the request being received, and its answer when the body is larger.
    private var bodyLimit = 0
    private var tooLarge = RESTResponse(status: 413)
    /// The sequence number of the next complete request, and of the next answer to write.
    private var nextRequest: UInt64 = 0
    private var nextAnswer: UInt64 = 0
    private var ready: [UInt64: (response: RESTResponse, keepAlive: Bool)] = [:]
    private var readPaused = false
    private var active = true
    private var draining = false
    /// Complete requests waiting for an unsafe request before them (or, if unsafe, for
    /// everything before them) to finish.
    private var queued = CircularBuffer<(sequence: UInt64, request: RESTRequest, keepAlive: Bool)>()
    private var running = 0
    private var runningUnsafe = false

    /// `limits`: those the HTTP/1.1 decoder in front of this handler enforces (named in its
    /// 431 answer).
    public init(responder: any RESTResponder, limits: ConnectionLimits = .defaults) {
        self.responder = responder
        self.limits = limits
    }

    private var pending: Int { Int(nextRequest - nextAnswer) }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            context.triggerUserOutboundEvent(HTTP1RequestProgress.head, promise: nil)
            guard case .idle = receiving else { return }
            (bodyLimit, tooLarge) = responder.bodyLimit(method: head.method.rawValue, target: head.uri)
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
                // Refuse before reading a byte of it: the client may be sending gigabytes.
                answer(tooLarge, keepAlive: false, context: context)
                return
            }
            if pending == 0, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // curl and others wait for this before sending a body (RFC 9110 §10.1.1).
                // Only when no answer is queued: interim answers go out in order too.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))),
                                      promise: nil)
            }
            receiving = .body(head, context.channel.allocator.buffer(capacity: 0))
        case .body(var chunk):
            guard case .body(let head, var body) = receiving else { return }
            if body.readableBytes + chunk.readableBytes > bodyLimit {
                receiving = .discarding(head)
            } else {
                receiving = .idle  // drop the reference so `body` grows in place
                body.writeBuffer(&chunk)
                receiving = .body(head, body)
            }
        case .end:
            context.triggerUserOutboundEvent(HTTP1RequestProgress.end, promise: nil)
            switch receiving {
            case .body(let head, let body):
                receiving = head.isKeepAlive && !draining ? .idle : .closing
                dispatch(head, body, context: context)
            case .discarding(let head):
                receiving = head.isKeepAlive && !draining ? .idle : .closing
                answer(tooLarge, keepAlive: head.isKeepAlive, context: context)
            case .idle, .closing:
                break
            }
        }
    }

    private func dispatch(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let sequence = nextRequest
        nextRequest += 1
        queued.append((sequence, RESTRequest(head: head, body: Array(body.readableBytesView)), head.isKeepAlive))
        pump(context: context)
    }

    /// Starts every queued request the ordering rules allow now.
    private func pump(context: ChannelHandlerContext) {
        while let next = queued.first, !runningUnsafe, next.request.isSafe || running == 0 {
            queued.removeFirst()
            running += 1
            let safe = next.request.isSafe
            runningUnsafe = !safe
            let (sequence, request, keepAlive) = next
            responder.respond(to: request, eventLoop: context.eventLoop).assumeIsolated().whenComplete { result in
                self.running -= 1
                if !safe { self.runningUnsafe = false }
                let response = (try? result.get()) ?? RESTResponse(.internalError("the request failed"))
                self.complete(sequence, response, keepAlive: keepAlive, context: context)
                if self.active { self.pump(context: context) }
            }
        }
    }

    /// Queues an answer that needs no service: it still waits for the answers before it.
    private func answer(_ response: RESTResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        if !keepAlive { receiving = .closing }
        let sequence = nextRequest
        nextRequest += 1
        complete(sequence, response, keepAlive: keepAlive, context: context)
    }

    private func complete(_ sequence: UInt64, _ response: RESTResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard active else { return }
        ready[sequence] = (response, keepAlive)
        var wrote = false
        var closing: EventLoopFuture<Void>?
        while let next = ready.removeValue(forKey: nextAnswer) {
            nextAnswer += 1
            wrote = true
            // Draining: the last answer owed closes the connection.
            let keepAlive = next.keepAlive && !(draining && pending == 0)
            if keepAlive {
                write(next.response, keepAlive: true, context: context)
            } else {
                let promise = context.eventLoop.makePromise(of: Void.self)
                write(next.response, keepAlive: false, context: context, promise: promise)
                closing = promise.futureResult
                break
            }
        }
        guard wrote else { return }
        context.flush()  // one flush for every answer that became writable here
        if let closing {
            active = false
            ready.removeAll()
            queued.removeAll()
            closing.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            return
        }
        if readPaused && pending < Self.maxPipelined {
            readPaused = false
            context.read()
        }
    }

    /// Writes one whole answer (head, body, end) without flushing.
    private func write(_ response: RESTResponse, keepAlive: Bool, context: ChannelHandlerContext,
                       promise: EventLoopPromise<Void>? = nil) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5 + response.headers.count)
        response.forEachHeader { headers.add(name: $0, value: $1) }
        headers.add(name: "content-length", value: String(response.body.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status),
                                    headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                          promise: nil)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    public func read(context: ChannelHandlerContext) {
        if pending >= Self.maxPipelined {
            readPaused = true
            return
        }
        context.read()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is Drain else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        guard !draining else { return }
        draining = true
        switch receiving {
        case .idle:
            receiving = .closing
            if pending == 0 {
                active = false
                context.close(promise: nil)
            }
        case .body, .discarding, .closing:
            break  // the request being read is answered, then the connection closes
        }
    }

    /// A request NIO could not parse gets a 400 in the contract's shape (431 for a head over
    /// the header limits, RFC 6585 §5), after the answers before it, and the connection
    /// closes: after a framing error nothing more on it can be trusted.
    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard active, !isClosing else { return }
        let response = parserError == .headerOverflow
            ? RESTResponse(.headersTooLarge(limit: limits.maxHeaderListSize))
            : RESTResponse(.validation("malformed HTTP request: \(error)"))
        answer(response, keepAlive: false, context: context)
    }

    private var isClosing: Bool {
        if case .closing = receiving { return true }
        return false
    }

    public func channelInactive(context: ChannelHandlerContext) {
        active = false
        ready.removeAll()
        queued.removeAll()
        context.fireChannelInactive()
    }
}
