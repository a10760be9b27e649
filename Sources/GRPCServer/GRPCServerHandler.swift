import ContextModel
import HTTPServing
import Logging
import NGHTTP2
import NIOCore
import NIOHTTP1

/// Serves gRPC (PROTOCOL-HTTP2.md) on one HTTP/2 connection through an nghttp2 server
/// session, entirely on the connection's event loop: bytes in → `mem_recv` → per-stream
/// headers and length-prefixed message → the service; answers → `mem_send` → one flush per
/// read cycle (or per event-loop tick for answers that arrive between reads).
///
/// Each gRPC call's life is decided by its `GRPCServerStream`, a state machine held as a
/// value: this handler feeds it what nghttp2, the timers, the admission control and the
/// service report, and carries out the actions it returns. What the handler keeps itself is
/// the connection's: the nghttp2 session, its I/O, the byte budgets, admission, the table of
/// streams. The service answers a call through its `GRPCCall`.
///
/// With a `RESTResponder`, a request that is not native gRPC (its content type does not
/// start with `application/grpc`, or is `application/grpc-web…`) is a plain HTTP exchange
/// (`H2HTTPExchange`) instead: its body is collected up to the responder's limit and it gets
/// one HTTP answer (REST, gRPC-Web, health) that ends the stream without trailers.
///
/// Calls that go to the core take a slot of the event loop's `LoopAdmission`; a complete call
/// that finds none waits, unread beyond its request, and the connection is not read until its
/// waiting calls started (issue 11, item 5). Answers wait in memory only within `AnswerBudget`,
/// and nothing is taken from nghttp2 while the socket is not writable (item 2).
public final class GRPCServerHandler: ChannelDuplexHandler, NGHTTP2SessionDelegate, AdmissionWaiter {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    /// Sent through the pipeline to start a graceful drain (SIGTERM): GOAWAY, let the
    /// streams in flight finish, then close.
    public struct Drain: Sendable { public init() {} }

    public struct Configuration: Sendable {
        public var http2 = HTTP2Settings()
        /// Largest request message (gRPC's customary default: 4 MiB). Larger ones get
        /// RESOURCE_EXHAUSTED before they are buffered.
        public var maxMessageBytes = 4 << 20
        /// What every connection is held to, whatever it speaks (the same value the HTTP/1.1
        /// handler gets): the header list's size and fields (announced in SETTINGS and enforced
        /// by the session), `handshakeTimeout` from the handler's start to the client's first
        /// SETTINGS frame (RFC 9113 §3.4: the preface ends with it), `idleTimeout` with no
        /// open stream (GOAWAY, then close), the answer bytes one connection may hold for its
        /// client (`AnswerBudget`: bodies its window does not let out yet) and
        /// `answerStallTimeout` (none of them taken: GOAWAY ENHANCE_YOUR_CALM and close).
        public var limits = ConnectionLimits()
        /// Calls a client may cancel (RST_STREAM after a complete request, not near the call's
        /// deadline) at once, and per second after that; past it: GOAWAY ENHANCE_YOUR_CALM
        /// and close (`CancelRateLimit`). nghttp2 bounds HEADERS+RST alone at 1000 and 33/s.
        public var cancelledCallsBurst = 200
        public var cancelledCallsPerSecond = 50
        /// Request bytes one connection may buffer for requests not yet complete, its HTTP/2
        /// connection window included (`ConnectionRequestBudget`). The connection window is
        /// held to `this − maxMessageBytes` so that one whole message always fits.
        public var maxBufferedRequestBytesPerConnection = 32 << 20
        /// The same for the whole process, shared by every connection of this configuration.
        public var processRequestBudget = ProcessByteBudget(maxBytes: 256 << 20)
        /// Answer bytes the whole process may hold for clients (`limits` has the per-connection
        /// bound).
        public var processAnswerBudget = ProcessByteBudget(maxBytes: 256 << 20)
        /// Admission control per event loop (`LoopAdmission`); nil: every call starts at once.
        public var admissions: LoopAdmissions?
        /// Metrics and the failed-call log line (README, "Metrics", "Tracing"); nil: none.
        public var observers: (any GRPCCallObserving)?
        public init() {}
        public static var defaults: Configuration { Configuration() }
    }

    /// One HTTP/2 stream of the connection: a gRPC call, whose life is its
    /// `GRPCServerStream` (a value: the handler carries out its actions), or, once its headers
    /// say so, a plain HTTP exchange (`H2HTTPExchange`); plus what the handler keeps for it:
    /// request bytes counted in the budgets, the answer being sent, its timer. It is also the
    /// call's `GRPCCallHandle`: the `GRPCCall` given to the service answers through it.
    fileprivate final class Stream: GRPCCallHandle {
        let id: Int32
        /// Weak: an answer may come after the connection closed and its handler left the
        /// pipeline; the call is closed by then (`connectionClosed`) and the answer ignored.
        weak var connection: GRPCServerHandler?
        var grpc: GRPCServerStream
        /// Set when the headers make it a plain HTTP exchange, not a gRPC call.
        var http: H2HTTPExchange?
        var head = H2RequestHead()
        var deadlineTask: Scheduled<Void>?
        /// The service's hook to drop queued work for the call (`GRPCCall.onCancel`).
        var cancel: (() -> Void)?
        /// When it began waiting for a slot, on the loop's clock.
        var waitingSince: UInt64 = 0
        /// Answer bytes counted in the connection's `AnswerBudget` and not yet sent, and
        /// whether they count in the process's budget too.
        var answerHeld = 0
        var answerInProcess = false
        /// For the observer: the call's trace and when it opened.
        var trace: TraceContext?
        var startedNanos: UInt64 = 0
        /// Request bytes buffered for this stream: window given back (`held`) or not yet
        /// (`unconsumed`). Both go when the request is complete or the stream ends.
        var held = 0
        var unconsumed = 0
        /// The response body nghttp2 pulls (`readBody`), and the trailers that follow it.
        var body: ByteBuffer?
        var trailers: HeaderBlock?
        /// Answered before the client finished sending: RST_STREAM(NO_ERROR) once our end
        /// of the stream is on the wire (sooner, nghttp2 would drop the queued answer).
        var resetWhenSent = false

        init(id: Int32, connection: GRPCServerHandler, maxMessageBytes: Int, allocator: ByteBufferAllocator) {
            self.id = id
            self.connection = connection
            grpc = GRPCServerStream(maxMessageBytes: maxMessageBytes, allocator: allocator)
        }

        /// Request bytes are read, not dropped.
        var acceptsData: Bool { http.map { $0.state == .receiving } ?? grpc.acceptsData }
        var isWaitingForAdmission: Bool {
            http.map { $0.state == .waitingForAdmission } ?? (grpc.state == .waitingForAdmission)
        }
        /// The response body may grow (a message stream still receiving): empty is not done.
        var bodyMayGrow: Bool { http == nil && grpc.bodyMayGrow }

        // GRPCCallHandle
        var isActive: Bool { http == nil && grpc.isActive }
        var deadline: NIODeadline? { grpc.deadline }

        func answer(_ result: Result<GRPCResponseMessage, GRPCStatus>, trailers: [(String, String)]) {
            guard isActive, let connection else { return }
            connection.answer(self, result, trailers: trailers)
        }

        func onCancel(_ body: @escaping () -> Void) {
            if isActive { cancel = body }
        }

        /// Runs the cancel hook once, if the call had one.
        func runCancel() {
            let hook = cancel
            cancel = nil
            hook?()
        }
    }

    private let service: any GRPCService
    private let rest: (any RESTResponder)?
    private let configuration: Configuration
    private let logger: Logger
    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var streams: [Int32: Stream] = [:]
    private var inReadCycle = false
    /// Streams that kept request bytes sharing the read buffer of the read being processed
    /// (`GRPCServerStream.compact`): their bytes get storage of their own when it is done.
    private var pinningStreams: [Stream] = []
    private var flushScheduled = false
    private var draining = false
    private var closing = false
    private var settingsReceived = false
    private var prefaceTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var cancelBudget: CancelRateLimit
    private var requestBudget: ConnectionRequestBudget
    /// Set once the connection cancelled too many calls: GOAWAY ENHANCE_YOUR_CALM is queued.
    private var terminatedForCancels = false
    private var admission: LoopAdmission?
    /// Complete calls waiting for a slot, oldest first (entries of streams gone since are
    /// skipped); `waitingCount` counts the live ones.
    private var waitingCalls = CircularBuffer<Int32>()
    private var waitingCount = 0
    private var inAdmissionRing = false
    private var answers: AnswerBudget
    /// The socket took no more (not writable): nothing more is taken from nghttp2 until it does.
    private var outputBlocked = false
    /// A `read` held back: calls wait for admission, or the socket is not writable.
    private var readHeld = false
    private var stallTimer: Scheduled<Void>?
    /// Last time the client took answer bytes (or answers began waiting), uptime nanoseconds.
    private var lastAnswerProgress: UInt64 = 0
    /// This loop's observer (`Configuration.observers`), found when the connection starts.
    private var observer: (any GRPCCallObserver)?

    public init(service: any GRPCService, rest: (any RESTResponder)? = nil, configuration: Configuration = .defaults,
                logger: Logger = Logger(label: "cs.gateway.h2")) {
        self.service = service
        self.rest = rest
        var configuration = configuration
        // The budget and the connection window agree: what a peer may send unconsumed (the
        // window) leaves room for one whole message within the connection's budget.
        let budget = max(configuration.maxBufferedRequestBytesPerConnection, configuration.maxMessageBytes + 5 + 65_535)
        configuration.maxBufferedRequestBytesPerConnection = budget
        configuration.http2.connectionWindowSize = UInt32(clamping: max(65_535, min(
            Int(configuration.http2.connectionWindowSize), budget - configuration.maxMessageBytes - 5)))
        configuration.http2.initialWindowSize = min(configuration.http2.initialWindowSize,
                                                    configuration.http2.connectionWindowSize)
        configuration.http2.manualWindowUpdates = true
        configuration.http2.maxHeaderListSize = UInt32(clamping: configuration.limits.maxHeaderListSize)
        configuration.http2.maxHeaderFields = configuration.limits.maxHeaderFields
        self.configuration = configuration
        self.requestBudget = ConnectionRequestBudget(maxBytes: budget, window: Int(configuration.http2.connectionWindowSize))
        self.logger = logger
        self.cancelBudget = CancelRateLimit(burst: configuration.cancelledCallsBurst,
                                            perSecond: configuration.cancelledCallsPerSecond)
        self.answers = AnswerBudget(maxBytes: configuration.limits.maxBufferedAnswerBytesPerConnection,
                                    process: configuration.processAnswerBudget)
    }

    // MARK: Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        admission = configuration.admissions?.admission(for: context.eventLoop)
        do {
            session = try NGHTTP2Session(role: .server, delegate: self, settings: configuration.http2)
            observer = configuration.observers?.observer(for: context.eventLoop)
            observer?.connectionOpened()
            flush()  // our SETTINGS
            prefaceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.limits.handshakeTimeout) {
                [weak self] in
                guard let self, !self.settingsReceived, !self.closing else { return }
                self.logger.debug("no HTTP/2 preface and SETTINGS in time: closing")
                self.closing = true
                self.context?.close(promise: nil)
            }
            armIdleTimer()
        } catch {
            logger.error("cannot create an HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        do {
            try session.receive(buffer)
            if !pinningStreams.isEmpty { compactPinningStreams() }
        } catch {
            pinningStreams.removeAll()
            // A connection error (bad preface, flood, protocol violation): nghttp2 queued a
            // GOAWAY; send it and close.
            logger.debug("HTTP/2 connection error", metadata: ["error": "\(error)"])
            closing = true
            flush()
            context.close(promise: nil)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flush()
        context.fireChannelReadComplete()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        prefaceTimer?.cancel()
        idleTimer?.cancel()
        let gone = streams.values
        streams.removeAll()
        stallTimer?.cancel()
        closing = true
        waitingCalls.removeAll()
        waitingCount = 0
        for stream in gone {
            configuration.processRequestBudget.release(stream.held + stream.unconsumed)
            stream.held = 0
            stream.unconsumed = 0
            dropAnswer(stream)
            if stream.http != nil {
                _ = stream.http!.close()
                releaseHTTPSlot(stream)
            } else {
                perform(stream, stream.grpc.connectionClosed())
            }
        }
        observer?.connectionClosed()
        observer = nil
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        session = nil
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Drain {
            guard !draining, let session else { return }
            draining = true
            session.submitShutdownNotice()
            flush()
            finishDrainIfIdle()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    /// Ends a drain once no stream is left. Deferred to the next event-loop turn: it is
    /// reached from inside nghttp2's callbacks (a stream closing during `mem_send`), where
    /// sending and closing would lose the output being produced.
    private func finishDrainIfIdle() {
        guard draining, streams.isEmpty, !closing, let context else { return }
        context.eventLoop.assumeIsolated().execute {
            guard self.draining, self.streams.isEmpty, !self.closing, let session = self.session else { return }
            session.submitGoAway()
            self.flush()
            self.closing = true
            self.context?.close(promise: nil)
        }
    }

    /// What a stream still keeps once the read is processed is copied out of the read buffer
    /// (the common call, whose END_STREAM came in the same read, was dispatched and keeps
    /// nothing): a client cannot make each of its streams pin a read buffer while the budgets
    /// count only its message.
    private func compactPinningStreams() {
        let allocator = context?.channel.allocator ?? ByteBufferAllocator()
        for s in pinningStreams { s.grpc.compact(allocator: allocator) }
        pinningStreams.removeAll(keepingCapacity: true)
    }

    // MARK: Output

    /// Writes what nghttp2 has ready and flushes, while the socket takes it: once it is not
    /// writable (the client does not read), the rest stays in nghttp2 and in the streams'
    /// bodies, counted by the answer budget, until `channelWritabilityChanged`.
    private func flush() {
        guard let context, let session else { return }
        guard context.channel.isWritable || closing else {
            blockOutput()
            return
        }
        repeat {
            // Sized from the last write: growing from empty re-copied the frames written so
            // far at each doubling (up to ~10 reallocations for a 64 KiB write under load).
            var out = context.channel.allocator.buffer(capacity: lastWriteSize)
            do {
                try session.drainOutput(into: &out, limit: Self.writeChunk)
            } catch {
                logger.debug("HTTP/2 send error", metadata: ["error": "\(error)"])
                context.close(promise: nil)
                return
            }
            lastWriteSize = min(max(out.readableBytes, 512), Self.writeChunk + Self.maxFrame)
            guard out.readableBytes > 0 else { break }
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        } while context.channel.isWritable && self.context != nil
        if !context.channel.isWritable && session.wantsWrite { blockOutput() }
        if session.isFinished && !closing {
            closing = true
            context.close(promise: nil)
        }
    }

    /// Output taken from nghttp2 per write: NIO's high-water mark is 64 KiB, so a few of these
    /// at most sit in NIO's buffer for a client that does not read.
    private static let writeChunk = 64 << 10
    /// One DATA frame's payload at most (SETTINGS_MAX_FRAME_SIZE, nghttp2's default 16 KiB) and
    /// its header: a drain passes `writeChunk` by at most this.
    private static let maxFrame = (16 << 10) + 9
    /// The size of the last write: the next one's buffer starts at it.
    private var lastWriteSize = 512

    private func blockOutput() {
        guard !outputBlocked else { return }
        outputBlocked = true
        noteAnswersWaiting()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && outputBlocked {
            outputBlocked = false
            lastAnswerProgress = context.eventLoop.now.uptimeNanoseconds
            flush()
            resumeReadsIfAllowed()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Reading

    /// Reads stop while calls of this connection wait for admission (they would only add to
    /// the wait, and TCP holds them at no cost to us) or its socket is not writable (the
    /// client is not reading our answers). A flow-control stall does not stop reads: the
    /// client's WINDOW_UPDATE frames must still arrive.
    private var holdsReads: Bool { waitingCount > 0 || outputBlocked }

    public func read(context: ChannelHandlerContext) {
        guard !holdsReads else {
            readHeld = true
            return
        }
        context.read()
    }

    private func resumeReadsIfAllowed() {
        guard readHeld, !holdsReads, let context else { return }
        readHeld = false
        context.read()
    }

    // MARK: Answers waiting for the client

    /// Answers wait (held bytes, or output blocked): the stall clock starts if it was not
    /// running, and a timer checks it.
    private func noteAnswersWaiting() {
        guard stallTimer == nil, let context, !closing else { return }
        let timeout = configuration.limits.answerStallTimeout
        lastAnswerProgress = context.eventLoop.now.uptimeNanoseconds
        stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.checkStall()
        }
    }

    private func checkStall() {
        stallTimer = nil
        guard !closing, let context,
              answers.held > 0 || outputBlocked else { return }
        let timeout = configuration.limits.answerStallTimeout
        let now = context.eventLoop.now.uptimeNanoseconds
        let stalledSince = lastAnswerProgress
        if now &- stalledSince >= UInt64(timeout.nanoseconds) {
            logger.notice("closing a connection whose client took none of its answers in time (GOAWAY ENHANCE_YOUR_CALM)", metadata: [
                "remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "answer_bytes": "\(answers.held)",
                "socket_blocked": "\(outputBlocked)", "timeout": "\(timeout)",
            ])
            session?.terminate(errorCode: 0xB)
            closing = true
            flush()
            context.close(promise: nil)
            return
        }
        stallTimer = context.eventLoop.assumeIsolated().scheduleTask(
            deadline: .uptimeNanoseconds(stalledSince &+ UInt64(timeout.nanoseconds))) { [weak self] in
            self?.checkStall()
        }
    }

    /// Counts a response body about to be held for the client; false when it may not be.
    private func holdAnswer(_ s: Stream, _ bytes: Int) -> Bool {
        guard let inProcess = answers.admit(bytes) else { return false }
        // A message stream's answers share one body: if any of them counts in the process's
        // budget, all do, so that what `readBody` sends is released the one way.
        if inProcess && !s.answerInProcess {
            configuration.processAnswerBudget.forceReserve(s.answerHeld)
            s.answerInProcess = true
        } else if !inProcess && s.answerInProcess {
            configuration.processAnswerBudget.forceReserve(bytes)
        }
        s.answerHeld += bytes
        noteAnswersWaiting()
        return true
    }

    /// The stream's answer bytes not yet sent leave the budget (the stream ended).
    private func dropAnswer(_ s: Stream) {
        answers.sent(s.answerHeld, countedInProcess: s.answerInProcess)
        s.answerHeld = 0
    }

    /// Answers produced between reads share one flush at the end of this event-loop tick.
    private func scheduleFlush() {
        guard !inReadCycle, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flush()
        }
    }

    // MARK: NGHTTP2SessionDelegate

    package func settingsReceived(_ isAck: Bool) {
        guard !isAck, !settingsReceived else { return }
        settingsReceived = true
        prefaceTimer?.cancel()
        prefaceTimer = nil
    }

    /// Armed whenever no stream is open; a stream opening cancels it.
    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
        guard streams.isEmpty, !closing, let context else { return }
        let timeout = configuration.limits.idleTimeout
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.streams.isEmpty, !self.closing, let session = self.session else { return }
            // RFC 9113 §6.8: GOAWAY with the last stream processed, then close.
            session.submitGoAway()
            self.flush()
            self.closing = true
            self.context?.close(promise: nil)
        }
    }


    package func streamOpened(_ streamID: Int32) {
        idleTimer?.cancel()
        idleTimer = nil
        let stream = Stream(id: streamID, connection: self, maxMessageBytes: configuration.maxMessageBytes,
                            allocator: context!.channel.allocator)
        streams[streamID] = stream
        if let observer {
            stream.startedNanos = NIODeadline.now().uptimeNanoseconds
            observer.streamOpened()
        }
    }

    package func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
        guard !isTrailer, let s = streams[streamID] else { return }
        switch name.count {
        case 5 where name.elementsEqual(":path".utf8):
            s.head.path = String(decoding: value, as: UTF8.self)
        case 7 where name.elementsEqual(":method".utf8):
            s.head.method = String(decoding: value, as: UTF8.self)  // short: no allocation
        case 12 where name.elementsEqual("content-type".utf8):
            s.head.contentType = String(decoding: value, as: UTF8.self)
        case 12 where name.elementsEqual("grpc-timeout".utf8):
            s.head.timeout = GRPCFraming.parseTimeout(value)
            s.head.badTimeout = s.head.timeout == nil
            if rest != nil { s.head.timeoutHeader = String(decoding: value, as: UTF8.self) }
        case 13 where name.elementsEqual("grpc-encoding".utf8):
            s.head.encoding = String(decoding: value, as: UTF8.self)
        case 13 where name.elementsEqual("authorization".utf8):
            if s.head.authorization != nil { s.head.repeatedHeader = "Authorization" }
            s.head.authorization = String(decoding: value, as: UTF8.self)
        case 15 where name.elementsEqual("contactcenterid".utf8):
            if s.head.tenant != nil { s.head.repeatedHeader = "ContactCenterId" }
            s.head.tenant = String(decoding: value, as: UTF8.self)
        case 15 where name.elementsEqual("idempotency-key".utf8):
            if s.head.idempotencyKey != nil { s.head.repeatedHeader = "Idempotency-Key" }
            s.head.idempotencyKey = String(decoding: value, as: UTF8.self)
        case 2 where name.elementsEqual("te".utf8), 10 where name.elementsEqual("user-agent".utf8),
             20 where name.elementsEqual("grpc-accept-encoding".utf8):
            break  // what every gRPC client sends and nothing here reads: not kept
        case 11 where name.elementsEqual("traceparent".utf8):
            s.head.traceParent = TraceParent(value)
            fallthrough  // and kept for an HTTP exchange, like any other header
        default:
            guard rest != nil, name.first != UInt8(ascii: ":") else { break }
            if s.head.otherHeaders.isEmpty { s.head.otherHeaders.reserveCapacity(128) }
            s.head.otherHeaders.append(contentsOf: name)
            s.head.otherHeaders.append(0)
            s.head.otherHeaders.append(contentsOf: value)
            s.head.otherHeaders.append(0)
        }
    }

    package func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {
        if let s = streams[streamID] {
            // What was kept of the block goes now; the reset closes the stream.
            s.grpc.headerBlockRefused()
            s.head.otherHeaders = []
        }
        if connectionEnding {
            logger.notice("closing a connection that keeps sending over-large header blocks (GOAWAY ENHANCE_YOUR_CALM)",
                          metadata: ["remote": "\(context?.remoteAddress.map { "\($0)" } ?? "?")"])
        } else {
            logger.debug("header block over the limit: stream reset", metadata: ["stream": "\(streamID)"])
        }
    }

    package func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {
        guard let s = streams[streamID] else { return }
        if !isTrailer {
            checkRequestHeaders(s)
        }
        if endStream { requestEnded(s) }
    }

    /// A plain HTTP exchange (with a `RESTResponder`, anything but native gRPC), or a gRPC
    /// call whose state machine checks the headers (PROTOCOL-HTTP2.md "Requests").
    private func checkRequestHeaders(_ s: Stream) {
        guard s.http == nil, s.grpc.state == .idle else { return }
        let head = s.head
        if let rest, !(head.contentType.map(Self.isGRPCProto) ?? false) {
            let (limit, tooLarge) = rest.bodyLimit(method: head.method, target: head.path ?? "/")
            s.http = H2HTTPExchange(limit: limit, tooLarge: tooLarge, allocator: context!.channel.allocator)
            return
        }
        let grpcHead = head.grpc
        var method = GRPCServerStream.Method(served: false)
        if grpcHead.isPost, grpcHead.isGRPCProto, let path = head.path, service.serves(path: path) {
            method.served = true
            method.messageStream = service.isMessageStream(path: path)
            method.needsAdmission = admission != nil && service.needsAdmission(path: path)
        }
        perform(s, s.grpc.receivedHeaders(grpcHead, method: method, now: .now()))
    }

    static func isGRPCProto(_ contentType: String) -> Bool {
        var base = contentType.utf8.prefix { $0 != UInt8(ascii: ";") }[...]
        while base.last == UInt8(ascii: " ") || base.last == UInt8(ascii: "\t") { base = base.dropLast() }
        return base.elementsEqual("application/grpc".utf8) || base.elementsEqual("application/grpc+proto".utf8)
    }

    package func data(_ streamID: Int32, _ chunk: ByteBuffer) {
        let count = chunk.readableBytes
        guard let s = streams[streamID], s.acceptsData else {
            session?.consume(streamID: streamID, count)  // nothing of it is kept
            return
        }
        // Counted before it is buffered: the process's budget is never passed, not even by
        // one chunk.
        guard configuration.processRequestBudget.reserve(count) else {
            session?.consume(streamID: streamID, count)
            return overBudget(s, "the gateway's buffered request bytes are at their budget (\(configuration.processRequestBudget.maxBytes) bytes)")
        }
        requestBudget.received(count)
        s.unconsumed += count
        if s.http != nil {
            if let refusal = chunk.withUnsafeReadableBytes({ s.http!.receive($0) }) { respondHTTP(s, refusal) }
        } else {
            // The chunk is a slice of the read buffer: a whole message in it is not copied.
            perform(s, s.grpc.receivedData(chunk) { streamReply(s, $0) })
            if s.grpc.pinsReadBuffer { pinningStreams.append(s) }
        }
        guard s.acceptsData else {
            return releaseRequestBytes(s)  // answered (an error): nothing more is kept
        }
        // A partial request gets its window back only within the connection's budget; a
        // stream that would need more is refused rather than stalled (a stalled stream keeps
        // the connection window shut for the others).
        guard s.unconsumed > 0 else { return }
        if requestBudget.mayGrant(s.unconsumed) {
            session?.consume(streamID: streamID, s.unconsumed)
            requestBudget.grant(s.unconsumed)
            s.held += s.unconsumed
            s.unconsumed = 0
        } else {
            overBudget(s, "request bytes buffered on this connection are at their budget (\(requestBudget.maxBytes) bytes)")
        }
    }

    /// The stream's request bytes are no longer buffered here: its message went to the
    /// service, or the stream was answered or ended. Window back for what was unconsumed.
    private func releaseRequestBytes(_ s: Stream) {
        guard s.held > 0 || s.unconsumed > 0 else { return }
        session?.consume(streamID: s.id, s.unconsumed)
        requestBudget.release(held: s.held, unconsumed: s.unconsumed)
        configuration.processRequestBudget.release(s.held + s.unconsumed)
        s.held = 0
        s.unconsumed = 0
    }

    /// RESOURCE_EXHAUSTED for gRPC (REST: 503 `OverloadedException`); the bytes are dropped.
    private func overBudget(_ s: Stream, _ message: String) {
        logger.debug("request over the buffering budget", metadata: ["stream": "\(s.id)", "why": "\(message)"])
        if s.http != nil {
            respondHTTP(s, RESTResponse(.overloaded(status: 503, message)))
        } else {
            perform(s, s.grpc.fail(GRPCStatus(code: .resourceExhausted, message: message, exception: "OverloadedException")))
        }
        releaseRequestBytes(s)
    }

    /// One request message of a message stream → its response (counted in the answer
    /// budget), or the status that ends the stream.
    private func streamReply(_ s: Stream, _ message: ByteBuffer) -> Result<GRPCResponseMessage, GRPCStatus> {
        switch service.respond(toStreamMessage: message, path: s.head.path ?? "") {
        case .success(let reply):
            guard holdAnswer(s, reply.count) else {
                return .failure(GRPCStatus(code: .resourceExhausted, message: answers.refusal(answerBytes: reply.count),
                                           exception: "OverloadedException"))
            }
            return .success(reply)
        case .failure(let status):
            return .failure(status)
        }
    }

    package func dataEndedStream(_ streamID: Int32) {
        guard let s = streams[streamID] else { return }
        requestEnded(s)
    }

    private func requestEnded(_ s: Stream) {
        guard s.http != nil else { return perform(s, s.grpc.receivedEndOfStream()) }
        guard s.http!.endOfStream() else { return }
        // A complete exchange. One for the core takes an admission slot, or waits for one
        // with its bytes still counted, and the connection is not read meanwhile.
        if let admission, rest?.needsAdmission(method: s.head.method, target: s.head.path ?? "/") ?? true {
            guard admission.tryAcquire() else {
                s.http!.waitForAdmission()
                return queueForAdmission(s)
            }
            s.http!.admitted()
        }
        dispatchHTTP(s)
    }

    // MARK: Carrying out a gRPC call's actions

    /// Does what the call's state machine decided, in order.
    private func perform(_ s: Stream, _ actions: GRPCServerStream.Actions) {
        // By index: `for in` would copy `actions` (eight inline actions and their payloads)
        // into its iterator on every input.
        for i in 0..<actions.count {
            let action = actions[i]
            switch action {
            case .startDeadlineTimer(let deadline):
                let id = s.id
                s.deadlineTask = context!.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                    // Stream ids are never reused on a connection: the id names this call.
                    guard let self, let s = self.streams[id], s.http == nil else { return }
                    self.perform(s, s.grpc.deadlineFired())
                }
            case .cancelDeadlineTimer:
                s.deadlineTask?.cancel()
                s.deadlineTask = nil
            case .requestAdmission:
                // A complete call for the core takes a slot, or waits for one with its bytes
                // still counted, and the connection is not read meanwhile.
                if let admission, !admission.tryAcquire() {
                    queueForAdmission(s)
                } else {
                    perform(s, s.grpc.admissionGranted())
                }
            case .leaveAdmissionQueue:
                leaveWaiting()
            case .dispatch(let message):
                dispatch(s, message)
            case .releaseRequestBytes:
                releaseRequestBytes(s)
            case .sendHeadersOnly(let block):
                submit(s, block, hasBody: false)
            case .sendHeadersAndMessage(let message):
                // The message was written behind its prefix: it is the body as it is.
                s.body = message.framed
                submit(s, GRPCServerStream.okHeaders, hasBody: true)
            case .sendMessage(let message):
                if var body = s.body, body.readableBytes > 0 {
                    s.body = nil  // one reference, so the write below grows the buffer in place
                    body.writeImmutableBuffer(message.framed)
                    s.body = body
                } else {
                    s.body = message.framed
                }
                session?.resumeBody(streamID: s.id)
                scheduleFlush()
            case .sendTrailers(let trailers):
                s.trailers = trailers
                // A message stream's body may be deferred (it waited for more): resumed, it
                // ends and the trailers follow (`bodyComplete`).
                if s.grpc.isMessageStream { session?.resumeBody(streamID: s.id) }
                scheduleFlush()
            case .resetWhenSent:
                s.resetWhenSent = true
            case .runCancel:
                s.runCancel()
            case .releaseSlot:
                admission?.release()
            case .countCancel:
                countCancel()
            case .reportEnd(let code, let status):
                observer?.callEnded(GRPCCallRecord(path: s.head.path, code: code, status: status,
                                                   startedNanos: s.startedNanos, tenant: s.head.tenant, trace: s.trace))
            }
        }
    }

    private func submit(_ s: Stream, _ block: HeaderBlock, hasBody: Bool) {
        do {
            try session?.submitHeaders(streamID: s.id, block, hasBody: hasBody)
        } catch {
            logger.error("cannot submit a response", metadata: ["error": "\(error)"])
        }
        scheduleFlush()
    }

    /// Hands a complete call to the service with its `GRPCCall`.
    private func dispatch(_ s: Stream, _ message: ByteBuffer) {
        s.trace = observer?.traceContext(continuing: s.head.traceParent)
        var request = GRPCRequest(path: s.head.path!, message: message, deadline: s.grpc.deadline,
                                  tenant: s.head.tenant, authorization: s.head.authorization,
                                  idempotencyKey: s.head.idempotencyKey)
        request.trace = s.trace
        service.handle(request, call: GRPCCall(s), eventLoop: context!.eventLoop)
    }

    /// The service answered a dispatched call (`Stream.answer`).
    fileprivate func answer(_ s: Stream, _ result: Result<GRPCResponseMessage, GRPCStatus>, trailers: [(String, String)]) {
        guard s.grpc.isActive else { return }
        s.cancel = nil
        var result = result
        if case .success(let message) = result, !holdAnswer(s, message.count) {
            result = .failure(GRPCStatus(code: .resourceExhausted, message: answers.refusal(answerBytes: message.count),
                                         exception: "OverloadedException"))
        }
        perform(s, s.grpc.answer(result, trailers: trailers))
    }

    /// A cancelled call: past the connection's budget of them, GOAWAY ENHANCE_YOUR_CALM.
    private func countCancel() {
        guard !closing, !terminatedForCancels, !cancelBudget.admit(now: NIODeadline.now().uptimeNanoseconds) else { return }
        // Rapid reset with complete requests: each costs a decoded, queued call. Closing
        // (GOAWAY ENHANCE_YOUR_CALM, sent when this read cycle flushes) bounds it per
        // connection.
        logger.notice("closing a connection that cancels too many calls (GOAWAY ENHANCE_YOUR_CALM)", metadata: [
            "remote": "\(context?.remoteAddress.map { "\($0)" } ?? "?")",
            "burst": "\(cancelBudget.burst)", "per_second": "\(cancelBudget.perSecond)",
        ])
        terminatedForCancels = true
        session?.terminate(errorCode: 0xB)
        scheduleCloseAfterFlush()
    }

    // MARK: AdmissionWaiter

    private func queueForAdmission(_ s: Stream) {
        guard let admission else { return }
        s.waitingSince = admission.now
        waitingCalls.append(s.id)
        waitingCount += 1
        if !inAdmissionRing {
            inAdmissionRing = true
            admission.wait(self)
        }
    }

    /// A slot for this connection's oldest waiting call.
    public func admitOne() -> (started: Bool, more: Bool) {
        inAdmissionRing = false
        var started = false
        while let id = waitingCalls.popFirst() {
            guard let s = streams[id], s.isWaitingForAdmission else { continue }
            if let admission, let message = admission.waitedTooLong(since: s.waitingSince) {
                // Refused now rather than started late; the slot goes to the next call.
                if s.http != nil {
                    respondHTTP(s, RESTResponse(.overloaded(status: 429, message), retryAfter: 1))
                } else {
                    perform(s, s.grpc.admissionRefused(message))
                }
                continue
            }
            waitingCount -= 1
            if s.http != nil {
                s.http!.admitted()
                dispatchHTTP(s)
            } else {
                perform(s, s.grpc.admissionGranted())
            }
            started = true
            break
        }
        let more = waitingCount > 0
        inAdmissionRing = more
        if !more { waitingCalls.removeAll() }
        if started { scheduleFlush() }
        resumeReadsIfAllowed()
        return (started, more)
    }

    /// A waiting call ends without starting (deadline, reset, error).
    private func leaveWaiting() {
        waitingCount -= 1
        if waitingCount == 0 { waitingCalls.removeAll() }
        resumeReadsIfAllowed()
    }

    package func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        guard let s = streams[streamID] else { return }
        streams[streamID] = nil
        dropAnswer(s)
        // A call's handle may outlive the stream (the service still holds it): keep nothing
        // large alive with it.
        s.body = nil
        s.head.otherHeaders = []
        if s.http != nil {
            let previous = s.http!.close()
            if previous == .waitingForAdmission { leaveWaiting() }  // costs nothing: not a cancel
            releaseRequestBytes(s)
            if previous == .dispatched { countCancel() }
        } else {
            if s.grpc.state == .dispatched || s.grpc.state == .receiving {
                // RST_STREAM from the client (or a GOAWAY): the call is cancelled. Its
                // `GRPCCall` turns inactive and a call still queued toward the core leaves
                // the queue unsent.
                logger.trace("stream cancelled", metadata: ["stream": "\(streamID)", "code": "\(errorCode)"])
            }
            perform(s, s.grpc.streamClosed(now: .now()))
        }
        finishDrainIfIdle()
        if streams.isEmpty { armIdleTimer() }
        releaseHTTPSlot(s)
    }

    package func frameSent(_ streamID: Int32, endStream: Bool) {
        guard endStream, let s = streams[streamID], s.resetWhenSent else { return }
        s.resetWhenSent = false
        session?.submitReset(streamID: streamID, errorCode: 0)
    }

    /// A server's bodies go out without a copy into nghttp2 (`bodyChunk`, `writeBody`).
    package func readBody(_ streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        (0, true)  // never called for a server
    }

    package func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool) {
        guard let s = streams[streamID], let body = s.body else { return (0, true) }
        let n = min(max, body.readableBytes)
        // A message stream still receiving may have more to say: nothing to send is "later"
        // (nghttp2 defers the body until `resumeBody`), not the end.
        return (n, body.readableBytes == n && !s.bodyMayGrow)
    }

    /// The body's next `count` bytes, from the buffer the answer was written in straight into
    /// the connection's output, behind their DATA frame's header: the one copy of an answer
    /// byte on its way out (gateway/bench/copies.md, R5 and R6).
    package func writeBody(_ streamID: Int32, count n: Int, into output: inout ByteBuffer) -> Bool {
        guard let s = streams[streamID], var body = s.body, let bytes = body.readSlice(length: n) else { return false }
        output.writeImmutableBuffer(bytes)
        // Taken whole and no more to come: let the answer's buffer go now.
        s.body = body.readableBytes == 0 && !s.bodyMayGrow ? nil : body
        if n > 0 {
            answers.sent(n, countedInProcess: s.answerInProcess)
            s.answerHeld -= n
            lastAnswerProgress = context?.eventLoop.now.uptimeNanoseconds ?? 0
        }
        return true
    }

    package func bodyComplete(_ streamID: Int32) -> Bool {
        guard let s = streams[streamID] else { return false }
        // Called once its last bytes are announced (`bodyChunk`): `writeBody` still takes
        // them, and lets the buffer go then.
        if s.body?.readableBytes == 0 { s.body = nil }
        if s.http != nil { return false }  // the last DATA frame ends the stream
        // A successful call's trailers are always the same block: shared, not built per call.
        try? session?.submitTrailers(streamID: streamID, s.trailers ?? GRPCServerStream.okTrailers)
        return true
    }

    /// Sends what nghttp2 queued (the GOAWAY) and closes, outside nghttp2's callbacks.
    private func scheduleCloseAfterFlush() {
        guard let context else { return }
        context.eventLoop.assumeIsolated().execute {
            self.flush()
            guard !self.closing else { return }
            self.closing = true
            self.context?.close(promise: nil)
        }
    }

    // MARK: Plain HTTP exchanges

    private func dispatchHTTP(_ s: Stream) {
        guard let rest, let body = s.http?.dispatch() else { return }
        defer { releaseRequestBytes(s) }
        let request = s.head.restRequest(body: body)
        s.head.otherHeaders = []
        rest.respond(to: request, eventLoop: context!.eventLoop).assumeIsolated().whenComplete { result in
            guard self.streams[s.id] === s, s.http?.state == .dispatched else { return }
            self.respondHTTP(s, (try? result.get()) ?? RESTResponse(.internalError("the request failed")))
        }
    }

    /// One whole HTTP answer: headers, then the body, whose last DATA frame ends the stream.
    private func respondHTTP(_ s: Stream, _ response: RESTResponse) {
        guard let http = s.http, http.mayRespond else { return }
        if http.state == .waitingForAdmission {
            leaveWaiting()
            releaseRequestBytes(s)
        }
        defer { releaseHTTPSlot(s) }
        let size = response.body.readableBytes
        if size > 0 && !holdAnswer(s, size) {
            // Over the answer budget (never the small answer below, so this ends here).
            return respondHTTP(s, RESTResponse(.overloaded(status: 503, answers.refusal(answerBytes: size))))
        }
        var block = HeaderBlock()
        block.add(":status", String(response.status))
        response.forEachHeader { block.add($0, $1) }
        block.add("content-length", String(size))
        s.http!.responded()
        // RFC 9113 §8.1: a server that answers before the request is complete may ask the
        // client to stop sending with RST_STREAM NO_ERROR; see `frameSent`.
        s.resetWhenSent = !http.requestEnded
        guard size > 0 else { return submit(s, block, hasBody: false) }
        s.body = response.body  // as the responder wrote it: no copy

        submit(s, block, hasBody: true)
    }

    /// The exchange's slot (if it holds one) is free: the next waiting call, here or on
    /// another connection of the loop, may start. Last in what calls it, as it may start calls.
    private func releaseHTTPSlot(_ s: Stream) {
        guard s.http?.releaseSlot() == true else { return }
        admission?.release()
    }
}
