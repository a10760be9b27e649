import ContextModel
import HTTPServing
import Logging
import NIOCore
import NIOHTTP1

/// Serves gRPC (PROTOCOL-HTTP2.md) on one HTTP/2 connection through an nghttp2 server
/// session, entirely on the connection's event loop: bytes in → `mem_recv` → per-stream
/// headers and length-prefixed message → the service; answers → `mem_send` → one flush per
/// read cycle (or per event-loop tick for answers that arrive between reads).
///
/// With a `RESTResponder`, a request that is not native gRPC (its content type does not
/// start with `application/grpc`, or is `application/grpc-web…`) is a plain HTTP exchange
/// instead: its body is collected up to the responder's limit and it gets one HTTP answer
/// (REST, gRPC-Web, health) that ends the stream without trailers.
///
/// Calls that go to the core take a slot of the event loop's `LoopAdmission`; a complete call
/// that finds none waits, unread beyond its request, and the connection is not read until its
/// waiting calls started (issue 11, item 5). Answers wait in memory only within `AnswerBudget`,
/// and nothing is taken from nghttp2 while the socket is not writable (item 2).
public final class GRPCServerHandler: ChannelDuplexHandler, NGHTTP2SessionDelegate, GRPCCallSink, AdmissionWaiter {
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
        /// From the handler's start to the client's first SETTINGS frame (RFC 9113 §3.4: the
        /// preface ends with it); nil: no limit.
        public var prefaceTimeout: TimeAmount? = .seconds(10)
        /// No open stream for this long: GOAWAY, then close. nil: no limit.
        public var idleTimeout: TimeAmount? = .minutes(5)
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
        /// Answer bytes one connection may hold for its client (`AnswerBudget`): bodies its
        /// flow-control window does not let out yet.
        public var maxBufferedAnswerBytesPerConnection = ConnectionLimits.defaults.maxBufferedAnswerBytesPerConnection
        /// The same for the whole process.
        public var processAnswerBudget = ProcessByteBudget(maxBytes: 256 << 20)
        /// Answers waiting and none of them taken by the client (window or socket) for this
        /// long: GOAWAY ENHANCE_YOUR_CALM and close. nil: no limit.
        public var answerStallTimeout: TimeAmount? = ConnectionLimits.defaults.answerStallTimeout
        /// Admission control per event loop (`LoopAdmission`); nil: every call starts at once.
        public var admissions: LoopAdmissions?
        /// Metrics and the failed-call log line (README, "Metrics", "Tracing"); nil: none.
        public var observers: (any GRPCCallObserving)?
        public init() {}
        public static var defaults: Configuration { Configuration() }
    }

    private final class Stream {
        /// `waiting`: the request is complete and waits for an admission slot (its bytes
        /// still count in the request budget).
        enum Phase { case receiving, waiting, dispatched, responding, done }
        var phase = Phase.receiving
        let generation: UInt64
        /// A plain HTTP exchange (see the type's comment), not a gRPC call.
        var isHTTP = false
        var method = ""
        var isPost: Bool { method == "POST" }
        var path: String?
        var contentType: String?
        var encoding: String?
        var timeout: TimeAmount?
        var timeoutHeader: String?
        var badTimeout = false
        var tenant: String?
        /// The `idempotency-key` metadata or header.
        var idempotencyKey: String?
        var authorization: String?
        /// `RESTChecks.singleHeaders`: a tenant or credentials given twice.
        var repeatedHeader: String?
        var reader: GRPCMessageReader
        var message: ByteBuffer?
        /// A message stream (`GRPCService.isMessageStream`): each request message is answered
        /// as it arrives; the phase stays `.receiving` until the client half-closes.
        var streaming = false
        /// A message stream's response headers are submitted: its status goes in trailers.
        var streamStarted = false
        var requestEnded = false
        var deadline: NIODeadline?
        var deadlineTask: Scheduled<Void>?
        /// The service's hook to drop queued work for the call (`GRPCResponder.onCancel`).
        var cancel: (() -> Void)?
        /// Holds a slot of the loop's admission until it is answered or ends.
        var admitted = false
        /// When it began waiting for a slot (`.waiting`), on the loop's clock.
        var waitingSince: UInt64 = 0
        /// Answer bytes counted in the connection's `AnswerBudget` and not yet sent, and
        /// whether they count in the process's budget too.
        var answerHeld = 0
        var answerInProcess = false
        /// For the observer: the `traceparent` received, the call's trace, when it opened, and
        /// the status sent (-1: none yet; `failure` for an error status).
        var traceParent: TraceParent?
        var trace: TraceContext?
        var startedNanos: UInt64 = 0
        var outcome = -1
        var failure: GRPCStatus?
        /// Request bytes buffered for this stream: window given back (`held`) or not yet
        /// (`unconsumed`). Both go when the request is complete or the stream ends.
        var held = 0
        var unconsumed = 0
        var body: ByteBuffer?
        var trailers = HeaderBlock()
        /// Answered before the client finished sending: RST_STREAM(NO_ERROR) once our end
        /// of the stream is on the wire (sooner, nghttp2 would drop the queued answer).
        var resetWhenSent = false
        /// HTTP exchanges: the body so far, its limit, and the headers the gRPC path does not
        /// read (as `name\0value\0` pairs: one allocation, turned into `HTTPHeaders` only
        /// for an HTTP exchange).
        var httpBody: ByteBuffer?
        var httpLimit = 0
        var httpTooLarge: RESTResponse?
        var otherHeaders: [UInt8] = []

        init(generation: UInt64, maxMessageBytes: Int, allocator: ByteBufferAllocator) {
            self.generation = generation
            reader = GRPCMessageReader(maxMessageBytes: maxMessageBytes, allocator: allocator)
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
    private var nextGeneration: UInt64 = 1
    private var inReadCycle = false
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
    private var waitingCalls = CircularBuffer<(id: Int32, generation: UInt64)>()
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
        self.configuration = configuration
        self.requestBudget = ConnectionRequestBudget(maxBytes: budget, window: Int(configuration.http2.connectionWindowSize))
        self.logger = logger
        self.cancelBudget = CancelRateLimit(burst: configuration.cancelledCallsBurst,
                                            perSecond: configuration.cancelledCallsPerSecond)
        self.answers = AnswerBudget(maxBytes: configuration.maxBufferedAnswerBytesPerConnection,
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
            if let timeout = configuration.prefaceTimeout {
                prefaceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                    guard let self, !self.settingsReceived, !self.closing else { return }
                    self.logger.debug("no HTTP/2 preface and SETTINGS in time: closing")
                    self.closing = true
                    self.context?.close(promise: nil)
                }
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
            try buffer.withUnsafeReadableBytes { try session.receive($0) }
        } catch {
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
            stream.deadlineTask?.cancel()
            stream.phase = .done
            stream.runCancel()
            releaseSlot(stream)
            reportEnd(stream)
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
            var out = context.channel.allocator.buffer(capacity: 0)
            do {
                try session.drainOutput(into: &out, limit: Self.writeChunk)
            } catch {
                logger.debug("HTTP/2 send error", metadata: ["error": "\(error)"])
                context.close(promise: nil)
                return
            }
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
        guard stallTimer == nil, let timeout = configuration.answerStallTimeout, let context, !closing else { return }
        lastAnswerProgress = context.eventLoop.now.uptimeNanoseconds
        stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            self?.checkStall()
        }
    }

    private func checkStall() {
        stallTimer = nil
        guard !closing, let timeout = configuration.answerStallTimeout, let context,
              answers.held > 0 || outputBlocked else { return }
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

    func settingsReceived(_ isAck: Bool) {
        guard !isAck, !settingsReceived else { return }
        settingsReceived = true
        prefaceTimer?.cancel()
        prefaceTimer = nil
    }

    /// Armed whenever no stream is open; a stream opening cancels it.
    private func armIdleTimer() {
        idleTimer?.cancel()
        idleTimer = nil
        guard let timeout = configuration.idleTimeout, streams.isEmpty, !closing, let context else { return }
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
            guard let self, self.streams.isEmpty, !self.closing, let session = self.session else { return }
            // RFC 9113 §6.8: GOAWAY with the last stream processed, then close.
            session.submitGoAway()
            self.flush()
            self.closing = true
            self.context?.close(promise: nil)
        }
    }

    func streamOpened(_ streamID: Int32) {
        idleTimer?.cancel()
        idleTimer = nil
        let generation = nextGeneration
        nextGeneration &+= 1
        let stream = Stream(generation: generation, maxMessageBytes: configuration.maxMessageBytes,
                            allocator: context!.channel.allocator)
        streams[streamID] = stream
        if let observer {
            stream.startedNanos = NIODeadline.now().uptimeNanoseconds
            observer.streamOpened()
        }
    }

    func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
        guard !isTrailer, let s = streams[streamID] else { return }
        switch name.count {
        case 5 where name.elementsEqual(":path".utf8):
            s.path = String(decoding: value, as: UTF8.self)
        case 7 where name.elementsEqual(":method".utf8):
            s.method = String(decoding: value, as: UTF8.self)  // short: no allocation
        case 12 where name.elementsEqual("content-type".utf8):
            s.contentType = String(decoding: value, as: UTF8.self)
        case 12 where name.elementsEqual("grpc-timeout".utf8):
            s.timeout = GRPCFraming.parseTimeout(value)
            s.badTimeout = s.timeout == nil
            if rest != nil { s.timeoutHeader = String(decoding: value, as: UTF8.self) }
        case 13 where name.elementsEqual("grpc-encoding".utf8):
            s.encoding = String(decoding: value, as: UTF8.self)
        case 13 where name.elementsEqual("authorization".utf8):
            if s.authorization != nil { s.repeatedHeader = "Authorization" }
            s.authorization = String(decoding: value, as: UTF8.self)
        case 15 where name.elementsEqual("contactcenterid".utf8):
            if s.tenant != nil { s.repeatedHeader = "ContactCenterId" }
            s.tenant = String(decoding: value, as: UTF8.self)
        case 15 where name.elementsEqual("idempotency-key".utf8):
            if s.idempotencyKey != nil { s.repeatedHeader = "Idempotency-Key" }
            s.idempotencyKey = String(decoding: value, as: UTF8.self)
        case 2 where name.elementsEqual("te".utf8), 10 where name.elementsEqual("user-agent".utf8),
             20 where name.elementsEqual("grpc-accept-encoding".utf8):
            break  // what every gRPC client sends and nothing here reads: not kept
        case 11 where name.elementsEqual("traceparent".utf8):
            s.traceParent = TraceParent(value)
            fallthrough  // and kept for an HTTP exchange, like any other header
        default:
            guard rest != nil, name.first != UInt8(ascii: ":") else { break }
            if s.otherHeaders.isEmpty { s.otherHeaders.reserveCapacity(128) }
            s.otherHeaders.append(contentsOf: name)
            s.otherHeaders.append(0)
            s.otherHeaders.append(contentsOf: value)
            s.otherHeaders.append(0)
        }
    }

    func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {
        if let s = streams[streamID] {
            // What was kept of the block goes now; the reset closes the stream.
            s.phase = .done
            s.outcome = Int(GRPCStatusCode.resourceExhausted.rawValue)  // ENHANCE_YOUR_CALM, as clients report it
            s.otherHeaders = []
        }
        if connectionEnding {
            logger.notice("closing a connection that keeps sending over-large header blocks (GOAWAY ENHANCE_YOUR_CALM)",
                          metadata: ["remote": "\(context?.remoteAddress.map { "\($0)" } ?? "?")"])
        } else {
            logger.debug("header block over the limit: stream reset", metadata: ["stream": "\(streamID)"])
        }
    }

    func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {
        guard let s = streams[streamID] else { return }
        if !isTrailer {
            checkRequestHeaders(streamID, s)
        }
        if endStream { requestEnded(streamID, s) }
    }

    /// PROTOCOL-HTTP2.md "Requests": refuse what is not a gRPC call we serve before reading
    /// its message.
    private func checkRequestHeaders(_ streamID: Int32, _ s: Stream) {
        guard s.phase == .receiving else { return }
        if let rest, !(s.contentType.map(Self.isGRPCProto) ?? false) {
            s.isHTTP = true
            (s.httpLimit, s.httpTooLarge) = rest.bodyLimit(method: s.method, target: s.path ?? "/")
            s.httpBody = context!.channel.allocator.buffer(capacity: 0)
            return
        }
        guard s.isPost else {
            return respondHTTP(streamID, s, status: "405")
        }
        // "If Content-Type does not begin with "application/grpc", gRPC servers SHOULD
        // respond with HTTP status of 415". gRPC-Web and other codecs are not served here.
        guard let type = s.contentType, Self.isGRPCProto(type) else {
            return respondHTTP(streamID, s, status: "415")
        }
        guard let path = s.path, service.serves(path: path) else {
            return respondStatus(streamID, s, .unknownMethod(s.path ?? ""))
        }
        if let encoding = s.encoding, encoding != "identity" {
            // "If a client sends a message compressed with an algorithm the server does not
            // support, the server SHOULD respond with UNIMPLEMENTED" (compression.md).
            s.trailers.add("grpc-accept-encoding", "identity")
            return respondStatus(streamID, s, .unsupportedEncoding(encoding))
        }
        if let repeated = s.repeatedHeader {
            return respondStatus(streamID, s, .repeatedHeader(repeated))
        }
        if s.badTimeout {
            return respondStatus(streamID, s, .malformedTimeout)
        }
        s.streaming = service.isMessageStream(path: path)
        if let timeout = s.timeout {
            let deadline = NIODeadline.now() + timeout
            s.deadline = deadline
            let generation = s.generation
            s.deadlineTask = context!.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                self?.deadlineExpired(streamID, generation)
            }
        }
    }

    static func isGRPCProto(_ contentType: String) -> Bool {
        var base = contentType.utf8.prefix { $0 != UInt8(ascii: ";") }[...]
        while base.last == UInt8(ascii: " ") || base.last == UInt8(ascii: "\t") { base = base.dropLast() }
        return base.elementsEqual("application/grpc".utf8) || base.elementsEqual("application/grpc+proto".utf8)
    }

    func data(_ streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let s = streams[streamID], s.phase == .receiving else {
            session?.consume(streamID: streamID, bytes.count)  // nothing of it is kept
            return
        }
        // Counted before it is buffered: the process's budget is never passed, not even by
        // one chunk.
        guard configuration.processRequestBudget.reserve(bytes.count) else {
            session?.consume(streamID: streamID, bytes.count)
            return overBudget(streamID, s, "the gateway's buffered request bytes are at their budget (\(configuration.processRequestBudget.maxBytes) bytes)")
        }
        requestBudget.received(bytes.count)
        s.unconsumed += bytes.count
        receive(streamID, s, bytes)
        guard s.phase == .receiving else {
            return releaseRequestBytes(streamID, s)  // answered (an error): nothing more is kept
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
            overBudget(streamID, s, "request bytes buffered on this connection are at their budget (\(requestBudget.maxBytes) bytes)")
        }
    }

    /// The stream's request bytes are no longer buffered here: its message went to the
    /// service, or the stream was answered or ended. Window back for what was unconsumed.
    private func releaseRequestBytes(_ streamID: Int32, _ s: Stream) {
        guard s.held > 0 || s.unconsumed > 0 else { return }
        session?.consume(streamID: streamID, s.unconsumed)
        requestBudget.release(held: s.held, unconsumed: s.unconsumed)
        configuration.processRequestBudget.release(s.held + s.unconsumed)
        s.held = 0
        s.unconsumed = 0
        s.reader = GRPCMessageReader(maxMessageBytes: 0, allocator: context!.channel.allocator)
        s.httpBody = nil
    }

    /// RESOURCE_EXHAUSTED for gRPC (REST: 503 `OverloadedException`); the bytes are dropped.
    private func overBudget(_ streamID: Int32, _ s: Stream, _ message: String) {
        logger.debug("request over the buffering budget", metadata: ["stream": "\(streamID)", "why": "\(message)"])
        if s.isHTTP {
            respondHTTP(streamID, s, RESTResponse(.overloaded(status: 503, message)))
        } else {
            respondStatus(streamID, s, GRPCStatus(code: .resourceExhausted, message: message, exception: "OverloadedException"))
        }
        releaseRequestBytes(streamID, s)
    }

    private func receive(_ streamID: Int32, _ s: Stream, _ bytes: UnsafeRawBufferPointer) {
        if s.isHTTP {
            return httpData(streamID, s, bytes)
        }
        for event in s.reader.feed(bytes) {
            switch event {
            case .message(let message) where s.streaming:
                streamMessage(streamID, s, message)
                guard s.phase == .receiving else { return }
            case .message(let message):
                guard s.message == nil else {
                    // A unary method takes exactly one message (grpc-java: "More than one
                    // request messages for unary call").
                    return respondStatus(streamID, s, .secondMessage)
                }
                s.message = message
            case .tooLarge(let length):
                return respondStatus(streamID, s, .messageTooLarge(length, limit: configuration.maxMessageBytes))
            case .compressed:
                // Compressed-Flag 1 without a grpc-encoding we accepted (PROTOCOL-HTTP2.md).
                return respondStatus(streamID, s, .compressedWithoutEncoding)
            case .badFlag(let flag):
                return respondStatus(streamID, s, .badCompressedFlag(flag))
            }
        }
    }

    func dataEndedStream(_ streamID: Int32) {
        guard let s = streams[streamID] else { return }
        requestEnded(streamID, s)
    }

    private func requestEnded(_ streamID: Int32, _ s: Stream) {
        s.requestEnded = true
        guard s.phase == .receiving else { return }
        if !s.isHTTP {
            let problem: GRPCStatus? = s.reader.hasPartialMessage ? .endedInsideMessage
                : !s.streaming && s.message == nil ? .endedWithoutMessage  // grpc-java: "Half-closed without a request"
                : nil
            if problem != nil || s.streaming {
                releaseRequestBytes(streamID, s)
                if let problem { return respondStatus(streamID, s, problem) }
                return endMessageStream(streamID, s, nil)
            }
        }
        // A complete call. One for the core takes an admission slot, or waits for one with
        // its bytes still counted, and the connection is not read meanwhile.
        if let admission, needsAdmission(s) {
            guard admission.tryAcquire() else {
                s.phase = .waiting
                s.waitingSince = admission.now
                waitingCalls.append((streamID, s.generation))
                waitingCount += 1
                if !inAdmissionRing {
                    inAdmissionRing = true
                    admission.wait(self)
                }
                return
            }
            s.admitted = true
        }
        start(streamID, s)
    }

    private func needsAdmission(_ s: Stream) -> Bool {
        if s.isHTTP { return rest?.needsAdmission(method: s.method, target: s.path ?? "/") ?? true }
        return service.needsAdmission(path: s.path ?? "")
    }

    /// Hands a complete call to the service (`GRPCService` or the `RESTResponder`); its
    /// request bytes leave the budget.
    private func start(_ streamID: Int32, _ s: Stream) {
        defer { releaseRequestBytes(streamID, s) }
        if s.isHTTP {
            return dispatchHTTP(streamID, s)
        }
        guard let message = s.message else { return }
        s.message = nil
        s.phase = .dispatched
        s.trace = observer?.traceContext(continuing: s.traceParent)
        var request = GRPCRequest(path: s.path!, message: message, deadline: s.deadline,
                                  tenant: s.tenant, authorization: s.authorization, idempotencyKey: s.idempotencyKey)
        request.trace = s.trace
        service.handle(request, responder: GRPCResponder(sink: self, streamID: streamID, generation: s.generation),
                       eventLoop: context!.eventLoop)
    }

    // MARK: AdmissionWaiter

    /// A slot for this connection's oldest waiting call.
    public func admitOne() -> (started: Bool, more: Bool) {
        inAdmissionRing = false
        var started = false
        while let (id, generation) = waitingCalls.popFirst() {
            guard let s = streams[id], s.generation == generation, s.phase == .waiting else { continue }
            if let admission, let message = admission.waitedTooLong(since: s.waitingSince) {
                // Refused now rather than started late; the slot goes to the next call.
                if s.isHTTP {
                    respondHTTP(id, s, RESTResponse(.overloaded(status: 429, message), retryAfter: 1))
                } else {
                    respondStatus(id, s, GRPCStatus(code: .resourceExhausted, message: message, exception: "OverloadedException"))
                }
                continue
            }
            waitingCount -= 1
            s.phase = .receiving
            s.admitted = true
            start(id, s)
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

    /// The call's slot (if it holds one) is free: the next waiting call, here or on another
    /// connection of the loop, may start. Last in what calls it, as it may start calls.
    private func releaseSlot(_ s: Stream) {
        guard s.admitted else { return }
        s.admitted = false
        admission?.release()
    }

    /// A waiting call ends without starting (deadline, reset, error).
    private func leaveWaiting(_ streamID: Int32, _ s: Stream) {
        guard s.phase == .waiting else { return }
        s.phase = .receiving
        waitingCount -= 1
        releaseRequestBytes(streamID, s)
        if waitingCount == 0 { waitingCalls.removeAll() }
        resumeReadsIfAllowed()
    }

    func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        guard let s = streams[streamID] else { return }
        if s.phase == .waiting {
            leaveWaiting(streamID, s)
            s.phase = .done  // a waiting call costs nothing: not counted as a cancel
        }
        releaseRequestBytes(streamID, s)
        dropAnswer(s)
        streams[streamID] = nil
        s.deadlineTask?.cancel()
        let wasDispatched = s.phase == .dispatched
        if s.phase == .dispatched || s.phase == .receiving {
            // RST_STREAM from the client (or a GOAWAY): the call is cancelled. The responder
            // turns inactive and a call still queued toward the core leaves the queue unsent.
            logger.trace("stream cancelled", metadata: ["stream": "\(streamID)", "code": "\(errorCode)"])
        }
        s.phase = .done
        s.runCancel()
        reportEnd(s)
        if wasDispatched && !closing && !terminatedForCancels && !isNearDeadline(s)
            && !cancelBudget.admit(now: NIODeadline.now().uptimeNanoseconds) {
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
        finishDrainIfIdle()
        if streams.isEmpty { armIdleTimer() }
        releaseSlot(s)
    }

    /// Tells the observer a gRPC call ended: with the status sent, else CANCELLED.
    private func reportEnd(_ s: Stream) {
        guard let observer, !s.isHTTP else { return }
        observer.callEnded(GRPCCallRecord(path: s.path, code: s.outcome >= 0 ? s.outcome : 1, status: s.failure,
                                          startedNanos: s.startedNanos, tenant: s.tenant, trace: s.trace))
    }

    func frameSent(_ streamID: Int32, endStream: Bool) {
        guard endStream, let s = streams[streamID], s.resetWhenSent else { return }
        s.resetWhenSent = false
        session?.submitReset(streamID: streamID, errorCode: 0)
    }

    func readBody(_ streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        guard let s = streams[streamID], var body = s.body else { return (0, true) }
        let n = min(buffer.count, body.readableBytes)
        body.withUnsafeReadableBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n)
        }
        body.moveReaderIndex(forwardBy: n)
        s.body = body
        if n > 0 {
            answers.sent(n, countedInProcess: s.answerInProcess)
            s.answerHeld -= n
            lastAnswerProgress = context?.eventLoop.now.uptimeNanoseconds ?? 0
        }
        // A message stream still receiving may have more to say: nothing to send is "later"
        // (nghttp2 defers the body until `resumeBody`), not the end.
        return (n, body.readableBytes == 0 && !(s.streaming && s.phase == .receiving))
    }

    func bodyComplete(_ streamID: Int32) -> Bool {
        guard let s = streams[streamID] else { return false }
        s.body = nil
        if s.isHTTP { return false }  // the last DATA frame ends the stream
        // A successful call's trailers are always the same block: shared, not built per call.
        try? session?.submitTrailers(streamID: streamID, s.trailers.isEmpty ? Self.okTrailers : s.trailers)
        return true
    }

    // MARK: Answers

    public func isActive(_ streamID: Int32, _ generation: UInt64) -> Bool {
        guard let s = streams[streamID], s.generation == generation else { return false }
        return s.phase == .dispatched
    }

    // MARK: Plain HTTP exchanges

    private func httpData(_ streamID: Int32, _ s: Stream, _ bytes: UnsafeRawBufferPointer) {
        guard var body = s.httpBody else { return }
        guard body.readableBytes + bytes.count <= s.httpLimit else {
            return respondHTTP(streamID, s, s.httpTooLarge ?? RESTResponse(status: 413))
        }
        s.httpBody = nil  // one reference, so the write below grows the buffer in place
        body.writeBytes(bytes)
        s.httpBody = body
    }

    private func dispatchHTTP(_ streamID: Int32, _ s: Stream) {
        guard let rest, let body = s.httpBody else { return }
        s.httpBody = nil
        s.phase = .dispatched
        var headers = HTTPHeaders()
        var rest8 = s.otherHeaders[...]
        while let nameEnd = rest8.firstIndex(of: 0) {
            let valueStart = rest8.index(after: nameEnd)
            guard let valueEnd = rest8[valueStart...].firstIndex(of: 0) else { break }
            headers.add(name: String(decoding: rest8[..<nameEnd], as: UTF8.self),
                        value: String(decoding: rest8[valueStart..<valueEnd], as: UTF8.self))
            rest8 = rest8[rest8.index(after: valueEnd)...]
        }
        if let type = s.contentType { headers.add(name: "content-type", value: type) }
        if let timeout = s.timeoutHeader { headers.add(name: "grpc-timeout", value: timeout) }
        s.otherHeaders = []
        if let key = s.idempotencyKey { headers.add(name: "idempotency-key", value: key) }
        let request = RESTRequest(method: s.method, target: s.path ?? "/", contentType: s.contentType, tenant: s.tenant,
                                  authorization: s.authorization, repeatedHeader: s.repeatedHeader,
                                  body: Array(body.readableBytesView), headers: headers, idempotencyKey: s.idempotencyKey)
        let generation = s.generation
        rest.respond(to: request, eventLoop: context!.eventLoop).assumeIsolated().whenComplete { result in
            guard let s = self.streams[streamID], s.generation == generation, s.phase == .dispatched else { return }
            self.respondHTTP(streamID, s, (try? result.get()) ?? RESTResponse(.internalError("the request failed")))
        }
    }

    /// One whole HTTP answer: headers, then the body, whose last DATA frame ends the stream.
    private func respondHTTP(_ streamID: Int32, _ s: Stream, _ response: RESTResponse) {
        guard s.phase == .receiving || s.phase == .dispatched || s.phase == .waiting else { return }
        leaveWaiting(streamID, s)
        defer { releaseSlot(s) }
        if !response.body.isEmpty && !holdAnswer(s, response.body.count) {
            // Over the answer budget (never the small answer below, so this ends here).
            return respondHTTP(streamID, s, RESTResponse(.overloaded(status: 503, answers.refusal(answerBytes: response.body.count))))
        }
        var block = HeaderBlock()
        block.add(":status", String(response.status))
        response.forEachHeader { block.add($0, $1) }
        block.add("content-length", String(response.body.count))
        guard !response.body.isEmpty else { return finish(streamID, s, block) }
        s.deadlineTask?.cancel()
        s.resetWhenSent = !s.requestEnded
        s.phase = .responding
        s.body = context!.channel.allocator.buffer(bytes: response.body)
        do {
            try session?.submitHeaders(streamID: streamID, block, hasBody: true)
        } catch {
            logger.error("cannot submit a response", metadata: ["error": "\(error)"])
        }
        scheduleFlush()
    }

    public func deadline(_ streamID: Int32, _ generation: UInt64) -> NIODeadline? {
        guard let s = streams[streamID], s.generation == generation else { return nil }
        return s.deadline
    }

    public func respond(_ streamID: Int32, _ generation: UInt64, _ result: Result<[UInt8], GRPCStatus>,
                        trailers: [(String, String)]) {
        guard !trailers.isEmpty, case .success = result, let s = streams[streamID], s.generation == generation,
              s.phase == .dispatched else {
            return respond(streamID, generation, result)
        }
        s.trailers.add("grpc-status", "0")
        for (name, value) in trailers { s.trailers.add(name, value) }
        respond(streamID, generation, result)
    }

    public func respond(_ streamID: Int32, _ generation: UInt64, _ result: Result<[UInt8], GRPCStatus>) {
        guard let s = streams[streamID], s.generation == generation, s.phase == .dispatched else { return }
        s.cancel = nil
        defer { releaseSlot(s) }
        switch result {
        case .success(let message):
            guard holdAnswer(s, message.count + 5) else {
                return respondStatus(streamID, s, GRPCStatus(code: .resourceExhausted, message: answers.refusal(answerBytes: message.count + 5),
                                                             exception: "OverloadedException"))
            }
            s.phase = .responding
            s.outcome = 0
            s.body = GRPCFraming.frame(message, allocator: context!.channel.allocator)
            do {
                try session?.submitHeaders(streamID: streamID, Self.okHeaders, hasBody: true)
            } catch {
                logger.error("cannot submit a response", metadata: ["error": "\(error)"])
            }
            s.deadlineTask?.cancel()
            scheduleFlush()
        case .failure(let status):
            respondStatus(streamID, s, status)
        }
    }

    private func deadlineExpired(_ streamID: Int32, _ generation: UInt64) {
        guard let s = streams[streamID], s.generation == generation,
              s.phase == .receiving || s.phase == .dispatched || s.phase == .waiting else { return }
        respondStatus(streamID, s, GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded", exception: nil))
        s.runCancel()  // a call still queued toward the core is dropped, not sent late
    }

    /// A client cancelling a call whose deadline is about to pass (within an eighth of its
    /// timeout) is timing out, not abusing resets: grpcio's deadline fires before ours.
    private func isNearDeadline(_ s: Stream) -> Bool {
        guard let deadline = s.deadline, let timeout = s.timeout else { return false }
        return NIODeadline.now() + .nanoseconds(timeout.nanoseconds / 8) + .milliseconds(5) >= deadline
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

    public func onCancel(_ streamID: Int32, _ generation: UInt64, _ body: @escaping () -> Void) {
        guard let s = streams[streamID], s.generation == generation, s.phase == .dispatched else { return }
        s.cancel = body
    }

    /// `:status 200`, `content-type: application/grpc`: every successful response's headers.
    /// `grpc-status: 0`: every successful response's trailers.
    nonisolated(unsafe) private static let okTrailers = HeaderBlock([("grpc-status", "0")])

    /// Never mutated after it is built, so sharing it across event loops is safe.
    nonisolated(unsafe) private static let okHeaders = HeaderBlock([(":status", "200"), ("content-type", "application/grpc")])

    /// A trailers-only response (PROTOCOL-HTTP2.md "Responses"): one HEADERS frame with the
    /// status that ends the stream.
    private func respondStatus(_ streamID: Int32, _ s: Stream, _ status: GRPCStatus) {
        guard s.phase == .receiving || s.phase == .dispatched || s.phase == .waiting else { return }
        leaveWaiting(streamID, s)
        if s.streamStarted {
            return endMessageStream(streamID, s, status)  // headers are out: the status goes in trailers
        }
        s.outcome = Int(status.code.rawValue)
        if status.code != .ok { s.failure = status }
        var block = HeaderBlock()
        block.add(":status", "200")
        block.add("content-type", "application/grpc")
        block.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { block.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
        if let exception = status.exception { block.add("cs-exception", exception) }
        for (name, value) in s.trailers.pairs { block.add(name, value) }
        finish(streamID, s, block)
    }

    // MARK: Message streams (bidirectional, one response per request message)

    /// Answers one request message of a message stream: the first answer submits the response
    /// headers with a body that nghttp2 pulls through `readBody`; later ones append to that
    /// body and resume it.
    private func streamMessage(_ streamID: Int32, _ s: Stream, _ message: ByteBuffer) {
        switch service.respond(toStreamMessage: message, path: s.path ?? "") {
        case .success(let reply):
            guard holdAnswer(s, reply.count + 5) else {
                return respondStatus(streamID, s, GRPCStatus(code: .resourceExhausted, message: answers.refusal(answerBytes: reply.count + 5),
                                                             exception: "OverloadedException"))
            }
            let framed = GRPCFraming.frame(reply, allocator: context!.channel.allocator)
            if s.streamStarted, var body = s.body {
                s.body = nil  // one reference, so the write below grows the buffer in place
                body.writeImmutableBuffer(framed)
                s.body = body
                session?.resumeBody(streamID: streamID)
            } else {
                s.streamStarted = true
                s.body = framed
                do {
                    try session?.submitHeaders(streamID: streamID, Self.okHeaders, hasBody: true)
                } catch {
                    logger.error("cannot submit a response", metadata: ["error": "\(error)"])
                }
            }
            scheduleFlush()
        case .failure(let status):
            respondStatus(streamID, s, status)
        }
    }

    /// Ends a message stream: OK when the client half-closed (`status` nil), else `status`.
    /// Before any answer it is a trailers-only response; after, the body still queued goes
    /// first and the trailers follow (`bodyComplete`).
    private func endMessageStream(_ streamID: Int32, _ s: Stream, _ status: GRPCStatus?) {
        guard s.streamStarted else {
            return respondStatus(streamID, s, status ?? GRPCStatus(code: .ok, message: "", exception: nil))
        }
        s.deadlineTask?.cancel()
        s.phase = .responding
        s.outcome = Int(status?.code.rawValue ?? 0)
        if let status, status.code != .ok {
            s.failure = status
            var trailers = HeaderBlock()
            trailers.add("grpc-status", String(status.code.rawValue))
            if !status.message.isEmpty { trailers.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
            if let exception = status.exception { trailers.add("cs-exception", exception) }
            s.trailers = trailers
        }
        s.resetWhenSent = !s.requestEnded
        session?.resumeBody(streamID: streamID)
        scheduleFlush()
        releaseSlot(s)
    }

    /// A plain HTTP answer for requests that are not gRPC at all (405, 415).
    private func respondHTTP(_ streamID: Int32, _ s: Stream, status: String) {
        s.outcome = Int(GRPCStatusCode.unknown.rawValue)
        finish(streamID, s, HeaderBlock([(":status", status)]))
    }

    private func finish(_ streamID: Int32, _ s: Stream, _ block: HeaderBlock) {
        s.deadlineTask?.cancel()
        let stillSending = !s.requestEnded
        s.phase = .done
        do {
            try session?.submitHeaders(streamID: streamID, block, hasBody: false)
        } catch {
            logger.error("cannot submit a response", metadata: ["error": "\(error)"])
        }
        // RFC 9113 §8.1: a server that answers before the request is complete may ask the
        // client to stop sending with RST_STREAM NO_ERROR; see `frameSent`.
        s.resetWhenSent = stillSending
        scheduleFlush()
        releaseSlot(s)
    }
}
