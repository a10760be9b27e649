import ContextModel
import NIOCore
import NIOHTTP1

/// Serves the REST API on one HTTP/1.1 connection, with keep-alive and pipelining.
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
final class CoreHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = Never
    typealias OutboundOut = HTTPServerResponsePart

    static let maxPipelined = 128

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

    private let service: ContextService
    private let maxBodyBytes: Int
    private let inFlight: InFlightCounter
    private var receiving = Receiving.idle
    /// Whether the request being received is a batch (its body limit is `maxBatchBytes`).
    private var receivingBatch = false
    /// The sequence number of the next complete request, and of the next answer to write.
    private var nextRequest: UInt64 = 0
    private var nextAnswer: UInt64 = 0
    private var ready: [UInt64: (response: CoreResponse, keepAlive: Bool)] = [:]
    private var readPaused = false
    private var active = true
    /// Complete requests waiting for an unsafe request before them (or, if unsafe, for
    /// everything before them) to finish.
    private var queued = CircularBuffer<(sequence: UInt64, request: CoreRequest, keepAlive: Bool, safe: Bool)>()
    private var running = 0
    private var runningUnsafe = false

    init(service: ContextService, inFlight: InFlightCounter) {
        self.service = service
        self.maxBodyBytes = service.configuration.limits.maxBytes
        self.inFlight = inFlight
    }

    private var pending: Int { Int(nextRequest - nextAnswer) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = receiving else { return }
            receivingBatch = service.isBatchRequest(method: head.method.rawValue, target: head.uri)
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
            switch receiving {
            case .body(let head, let body):
                receiving = head.isKeepAlive ? .idle : .closing
                dispatch(head, body, context: context)
            case .discarding(let head):
                receiving = head.isKeepAlive ? .idle : .closing
                answer(tooLarge, keepAlive: head.isKeepAlive, context: context)
            case .idle, .closing:
                break
            }
        }
    }

    /// The body limit of the request being received, and its 413.
    private var bodyLimit: Int { receivingBatch ? service.configuration.maxBatchBytes : maxBodyBytes }
    private var tooLarge: CoreResponse {
        receivingBatch ? CoreResponse(.batchTooLarge(limit: bodyLimit)) : CoreResponse(.payloadTooLarge(limit: bodyLimit))
    }

    private func dispatch(_ head: HTTPRequestHead, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let sequence = nextRequest
        nextRequest += 1
        let request = CoreRequest(
            method: head.method.rawValue,
            target: head.uri,
            contentType: head.headers.first(name: "content-type"),
            tenant: head.headers.first(name: "contactcenterid"),
            authorization: head.headers.first(name: "authorization"),
            body: Array(body.readableBytesView))
        // A batch (`POST {base}/batch`) is unsafe like every POST: it waits for everything
        // before it and holds back everything after it.
        let safe = head.method == .GET || head.method == .HEAD || head.method == .OPTIONS
        queued.append((sequence, request, head.isKeepAlive, safe))
        pump(context: context)
    }

    /// Starts every queued request the ordering rules allow now.
    private func pump(context: ChannelHandlerContext) {
        while let next = queued.first, !runningUnsafe, next.safe || running == 0 {
            queued.removeFirst()
            running += 1
            runningUnsafe = !next.safe
            let (sequence, request, keepAlive, safe) = next
            let service = self.service
            let promise = context.eventLoop.makePromise(of: CoreResponse.self)
            inFlight.enter()
            promise.completeWithTask { await service.handle(request) }
            promise.futureResult.assumeIsolated().whenSuccess { response in
                self.inFlight.leave()
                self.running -= 1
                if !safe { self.runningUnsafe = false }
                self.complete(sequence, response, keepAlive: keepAlive, context: context)
                if self.active { self.pump(context: context) }
            }
        }
    }

    /// Queues an answer that needs no store: it still waits for the answers before it.
    private func answer(_ response: CoreResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        if !keepAlive { receiving = .closing }
        let sequence = nextRequest
        nextRequest += 1
        complete(sequence, response, keepAlive: keepAlive, context: context)
    }

    private func complete(_ sequence: UInt64, _ response: CoreResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard active else { return }
        ready[sequence] = (response, keepAlive)
        var wrote = false
        var closing: EventLoopFuture<Void>?
        while let next = ready.removeValue(forKey: nextAnswer) {
            nextAnswer += 1
            wrote = true
            if next.keepAlive {
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
    private func write(_ response: CoreResponse, keepAlive: Bool, context: ChannelHandlerContext,
                       promise: EventLoopPromise<Void>? = nil) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        if !response.body.isEmpty { headers.add(name: "content-type", value: response.contentType ?? "application/json") }
        headers.add(name: "content-length", value: String(response.body.count))
        if let location = response.location { headers.add(name: "location", value: location) }
        if let allow = response.allow { headers.add(name: "allow", value: allow.joined(separator: ", ")) }
        if let retryAfter = response.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
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

    func read(context: ChannelHandlerContext) {
        if pending >= Self.maxPipelined {
            readPaused = true
            return
        }
        context.read()
    }

    /// A request NIO could not parse gets a 400 in the contract's shape, after the answers
    /// before it, and the connection closes: after a framing error nothing more on it can be
    /// trusted.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        guard active, !isClosing else { return }
        answer(CoreResponse(.validation("malformed HTTP request: \(error)")), keepAlive: false, context: context)
    }

    private var isClosing: Bool {
        if case .closing = receiving { return true }
        return false
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        ready.removeAll()
        queued.removeAll()
        context.fireChannelInactive()
    }
}
