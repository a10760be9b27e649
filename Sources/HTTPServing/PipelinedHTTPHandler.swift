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
/// reading from the socket pauses until answers go out (backpressure, bounded memory). Reads
/// also pause while the socket is not writable (the client does not read its answers); an
/// answer over `limits.maxBufferedAnswerBytesPerConnection` of bytes queued behind such a
/// socket gets 503 instead (`AnswerBudget`), and a socket that takes nothing for
/// `limits.answerStallTimeout` is closed. With admissions, each request for the core takes a
/// slot of its event loop's `LoopAdmission` and waits its turn for one.
public final class PipelinedHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler, AdmissionWaiter {
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
    /// When the first queued request began waiting for an admission slot.
    private var waitingSince: UInt64 = 0
    private var running = 0
    private var runningUnsafe = false
    private let processAnswers: ProcessByteBudget?
    private let admissions: LoopAdmissions?
    private var admission: LoopAdmission?
    private var inAdmissionRing = false
    private var context: ChannelHandlerContext?
    private var stallTimer: Scheduled<Void>?

    /// `limits`: those the HTTP/1.1 decoder in front of this handler enforces (named in its
    /// 431 answer), and the answer budget. `answers`: the process's answer budget (nil: none).
    public init(responder: any RESTResponder, limits: ConnectionLimits = .defaults, answers: ProcessByteBudget? = nil,
                admissions: LoopAdmissions? = nil) {
        self.responder = responder
        self.limits = limits
        self.processAnswers = answers
        self.admissions = admissions
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        admission = admissions?.admission(for: context.eventLoop)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stallTimer?.cancel()
        self.context = nil
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
            } else if body.readableBytes == 0 {
                // The first chunk is adopted, not copied: a body that arrives in one read (a
                // batch of calls, most REST bodies) is never copied before it is decoded. It
                // pins the decoder's read buffer until dispatch, which admission and the
                // pipelining bound keep to a few per connection.
                receiving = .body(head, chunk)
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
        let request = RESTRequest(head: head, body: body)
        queued.append((sequence, request, head.isKeepAlive))
        pump(context: context)
    }

    /// Starts every queued request the ordering rules and admission allow now.
    private func pump(context: ChannelHandlerContext) {
        while !inAdmissionRing, let next = queued.first, !runningUnsafe, next.request.isSafe || running == 0 {
            var admitted = false
            if let admission, responder.needsAdmission(method: next.request.method, target: next.request.target) {
                guard admission.tryAcquire() else {
                    inAdmissionRing = true
                    waitingSince = admission.now
                    admission.wait(self)
                    return
                }
                admitted = true
            }
            startNext(context: context, admitted: admitted)
        }
    }

    private func startNext(context: ChannelHandlerContext, admitted: Bool) {
        let next = queued.removeFirst()
        running += 1
        let safe = next.request.isSafe
        runningUnsafe = !safe
        let (sequence, request, keepAlive) = next
        responder.respond(to: request, eventLoop: context.eventLoop).assumeIsolated().whenComplete { result in
            self.running -= 1
            if !safe { self.runningUnsafe = false }
            let response = (try? result.get()) ?? RESTResponse(.internalError("the request failed"))
            self.complete(sequence, response, keepAlive: keepAlive, context: context)
            if admitted { self.admission?.release() }
            if self.active { self.pump(context: context) }
        }
    }

    /// This connection's turn for a slot: its next request starts, if the ordering rules let
    /// it start now (else the slot goes back, and the request waits for the one before it).
    public func admitOne() -> (started: Bool, more: Bool) {
        inAdmissionRing = false
        guard active, let context, let next = queued.first, !runningUnsafe, next.request.isSafe || running == 0 else {
            return (false, false)
        }
        if let admission, let message = admission.waitedTooLong(since: waitingSince) {
            // Refused now rather than started late (in order, like every answer here).
            let refused = queued.removeFirst()
            complete(refused.sequence, RESTResponse(.overloaded(status: 429, message), retryAfter: 1),
                     keepAlive: refused.keepAlive, context: context)
            waitingSince = admission.now
            pump(context: context)
            return (false, false)
        }
        startNext(context: context, admitted: true)
        pump(context: context)
        return (true, false)
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
        resumeReadsIfAllowed(context: context)
    }

    private func resumeReadsIfAllowed(context: ChannelHandlerContext) {
        if readPaused && pending < Self.maxPipelined && context.channel.isWritable {
            readPaused = false
            context.read()
        }
    }

    /// Writes one whole answer (head, body, end) without flushing. A large answer must fit
    /// the answer budget with what the socket has not taken yet, or it is replaced by a 503.
    private func write(_ response: RESTResponse, keepAlive: Bool, context: ChannelHandlerContext,
                       promise: EventLoopPromise<Void>? = nil) {
        var response = response
        var countedInProcess = 0
        if response.body.readableBytes > AnswerBudget.smallAnswer {
            let queued = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
            let size = response.body.readableBytes
            if queued > 0 && queued + size > limits.maxBufferedAnswerBytesPerConnection {
                response = RESTResponse(.overloaded(status: 503, "the answer (\(size) bytes) was not sent: \(queued) bytes of earlier answers are waiting for this client to read them (budget \(limits.maxBufferedAnswerBytesPerConnection) bytes per connection)"))
            } else if let processAnswers {
                if processAnswers.reserve(size) {
                    countedInProcess = size
                } else {
                    response = RESTResponse(.overloaded(status: 503, "the answer (\(size) bytes) was not sent: the gateway's answers waiting for their clients are at their budget (\(processAnswers.maxBytes) bytes)"))
                }
            }
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(5 + response.headers.count)
        response.forEachHeader { headers.add(name: $0, value: $1) }
        headers.add(name: "content-length", value: String(response.body.readableBytes))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status),
                                    headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 {
            var written: EventLoopPromise<Void>?
            if countedInProcess > 0, let processAnswers {
                written = context.eventLoop.makePromise()
                written!.futureResult.whenComplete { _ in processAnswers.release(countedInProcess) }
            }
            // The body as it was written (a batch answer, a representation): no copy here.
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: written)
        }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    public func read(context: ChannelHandlerContext) {
        if pending >= Self.maxPipelined || !context.channel.isWritable {
            readPaused = true
            return
        }
        context.read()
    }

    /// Not writable: the client is not reading its answers. Reads stop (above) and, if the
    /// socket takes nothing for `answerStallTimeout`, the connection closes.
    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallTimer?.cancel()
            stallTimer = nil
            resumeReadsIfAllowed(context: context)
        } else if stallTimer == nil {
            let timeout = limits.answerStallTimeout
            stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, let context = self.context, !context.channel.isWritable else { return }
                self.active = false
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
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
        stallTimer?.cancel()
        active = false
        ready.removeAll()
        queued.removeAll()
        context.fireChannelInactive()
    }
}
