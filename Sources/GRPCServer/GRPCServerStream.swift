import ContextModel
import NGHTTP2
import NIOCore

/// One native gRPC call on an HTTP/2 stream (PROTOCOL-HTTP2.md), as a value: what it may do
/// next and what must happen when something arrives. Pure: no I/O, no timers, no clock (`now`
/// comes in), no budgets; every input returns the actions its owner (`GRPCServerHandler`)
/// carries out on the connection's event loop, in order. Tested as a value with a fake clock
/// (GRPCServerStreamTests), like `BatcherStateMachine`.
///
///     idle ──headers──▶ receiving ──end of stream──▶ waitingForAdmission ──granted──▶ dispatched
///                          │  ╲                            │                             │
///                          │   ╲──(no admission needed)────┼────────────────────────────▶│
///                          ▼                               ▼                             ▼
///                      responding ◀──────── refusals, deadline, answers ─────────────────┘
///                          │
///       (any state) ───stream closed (RST_STREAM, GOAWAY, our end sent) / connection lost──▶ closed
///
/// A message stream (`GRPCService.isMessageStream`, server reflection) answers each request
/// message while it stays `receiving`, and responds (OK trailers) when the client half-closes.
struct GRPCServerStream {
    /// What the request headers said; the owner collects them, the machine checks them.
    struct Head {
        var isPost: Bool
        /// Whether the content type is `application/grpc` or `application/grpc+proto`.
        var isGRPCProto: Bool
        var path: String?
        var encoding: String?
        var timeout: TimeAmount?
        /// `grpc-timeout` was sent but is not a valid timeout.
        var badTimeout = false
        /// `RESTChecks.singleHeaders`: a tenant or credentials given twice.
        var repeatedHeader: String?
    }

    /// What the service says about the call's path (the owner asks it; the machine does not).
    struct Method: Equatable {
        /// `GRPCService.serves`.
        var served: Bool
        /// `GRPCService.isMessageStream`.
        var messageStream = false
        /// The call takes an admission slot before it is dispatched.
        var needsAdmission = false
    }

    enum State: Equatable {
        /// The stream opened; its headers are not complete yet.
        case idle
        /// Headers accepted; message bytes arriving (a message stream answers here too).
        case receiving
        /// The request is complete and waits for an admission slot.
        case waitingForAdmission
        /// The service has the call; its deadline (if any) runs.
        case dispatched
        /// Our answer is submitted; the stream has not closed yet.
        case responding
        /// The stream closed (or its connection did): nothing more happens.
        case closed
    }

    enum Action: Equatable {
        /// Arm the call's deadline timer; when it fires, `deadlineFired`.
        case startDeadlineTimer(NIODeadline)
        case cancelDeadlineTimer
        /// Take an admission slot (then `admissionGranted`) or queue for one.
        case requestAdmission
        /// The call was queued for a slot and no longer waits (it ended without starting).
        case leaveAdmissionQueue
        /// Hand the call with its one request message to the service.
        case dispatch(ByteBuffer)
        /// The request is no longer buffered: its bytes leave the budgets, window goes back.
        case releaseRequestBytes
        /// One HEADERS frame that ends the stream: a trailers-only response, or an HTTP
        /// refusal (405, 415).
        case sendHeadersOnly(HeaderBlock)
        /// The response headers (`okHeaders`) and a body that starts with this message.
        case sendHeadersAndMessage(GRPCResponseMessage)
        /// One more message on a body already started (a message stream).
        case sendMessage(GRPCResponseMessage)
        /// The trailers that end the stream once its body is out.
        case sendTrailers(HeaderBlock)
        /// Answered before the client finished sending: RST_STREAM(NO_ERROR) once our end of
        /// the stream is on the wire (RFC 9113 §8.1).
        case resetWhenSent
        /// Run the service's cancel hook (`GRPCCall.onCancel`).
        case runCancel
        /// Give the admission slot back. Always last: it may start other calls.
        case releaseSlot
        /// The client cancelled a dispatched call away from its deadline: a rapid-reset budget
        /// (`CancelRateLimit`) counts it.
        case countCancel
        /// Tell the observer the call ended with this status code (CANCELLED when it was never
        /// answered) and, for an error, the status sent.
        case reportEnd(code: Int, status: GRPCStatus?)
    }

    /// The actions of one input, in order. Up to eight are held inline, so that an input
    /// costs no allocation on the hot path (no input of a unary call returns more than
    /// seven); a message stream's answers beyond that spill into an array.
    struct Actions: Sequence, Equatable, ExpressibleByArrayLiteral, CustomStringConvertible {
        private var a0, a1, a2, a3, a4, a5, a6, a7: Action?
        private var more: [Action] = []
        private(set) var count = 0

        init() {}

        /// The hot path's inputs build their actions with these, not with an array literal:
        /// a literal's variadic array is a heap allocation per input (seen in perf as
        /// `Actions.init(arrayLiteral:)` and malloc, 11% of the front end's throughput
        /// with the iterator's copies below).
        init(_ a0: Action) {
            self.a0 = a0
            count = 1
        }

        init(_ a0: Action, _ a1: Action) {
            self.a0 = a0
            self.a1 = a1
            count = 2
        }

        init(arrayLiteral elements: Action...) {
            for element in elements { append(element) }
        }

        var isEmpty: Bool { count == 0 }

        mutating func append(_ action: Action) {
            switch count {
            case 0: a0 = action
            case 1: a1 = action
            case 2: a2 = action
            case 3: a3 = action
            case 4: a4 = action
            case 5: a5 = action
            case 6: a6 = action
            case 7: a7 = action
            default: more.append(action)
            }
            count += 1
        }

        mutating func append(contentsOf actions: Actions) {
            for i in 0..<actions.count { append(actions[i]) }
        }

        subscript(i: Int) -> Action {
            switch i {
            case 0: a0!
            case 1: a1!
            case 2: a2!
            case 3: a3!
            case 4: a4!
            case 5: a5!
            case 6: a6!
            case 7: a7!
            default: more[i - 8]
            }
        }

        struct Iterator: IteratorProtocol {
            let actions: Actions
            var index = 0

            mutating func next() -> Action? {
                guard index < actions.count else { return nil }
                defer { index += 1 }
                return actions[index]
            }
        }

        func makeIterator() -> Iterator { Iterator(actions: self) }

        var first: Action? { count > 0 ? self[0] : nil }
        var last: Action? { count > 0 ? self[count - 1] : nil }

        static func == (lhs: Actions, rhs: Actions) -> Bool { lhs.elementsEqual(rhs) }

        static func + (lhs: Actions, rhs: Actions) -> Actions {
            var all = lhs
            all.append(contentsOf: rhs)
            return all
        }

        var description: String { "\(Array(self))" }
    }

    /// `:status 200`, `content-type: application/grpc`: every successful response's headers.
    /// Never mutated after it is built, so sharing it across event loops is safe.
    nonisolated(unsafe) static let okHeaders = HeaderBlock([(":status", "200"), ("content-type", "application/grpc")])
    /// `grpc-status: 0`: every successful response's trailers (unless the service adds some).
    nonisolated(unsafe) static let okTrailers = HeaderBlock([("grpc-status", "0")])

    private(set) var state = State.idle
    private(set) var path: String?
    /// From `grpc-timeout`, on the clock `now` comes from.
    private(set) var deadline: NIODeadline?
    private var timeout: TimeAmount?
    private var deadlineArmed = false
    /// Answered message by message (`GRPCService.isMessageStream`).
    private(set) var isMessageStream = false
    private var needsAdmission = false
    /// The client half-closed.
    private(set) var requestEnded = false
    /// A message stream's response headers are submitted: its status goes in trailers.
    private var bodyStarted = false
    private var message: ByteBuffer?
    /// Nil once nothing more is read: the bytes of a partial message are not kept.
    private var reader: GRPCMessageReader?
    private let maxMessageBytes: Int
    /// Added to a refusal's status (`grpc-accept-encoding`).
    private var extraTrailers = HeaderBlock()
    private var holdsSlot = false
    /// The status code sent (-1: none yet), and the status of a failure.
    private(set) var outcome = -1
    private(set) var failure: GRPCStatus?

    init(maxMessageBytes: Int, allocator: ByteBufferAllocator) {
        self.maxMessageBytes = maxMessageBytes
        reader = GRPCMessageReader(maxMessageBytes: maxMessageBytes, allocator: allocator)
    }

    /// The service may answer (`GRPCCall.isActive`).
    var isActive: Bool { state == .dispatched }
    /// Request bytes are read (else they are dropped as they come).
    var acceptsData: Bool { state == .receiving }
    /// A message stream still receiving may add to its response body: an empty body is
    /// "later" (nghttp2 defers it until `resumeBody`), not the end.
    var bodyMayGrow: Bool { isMessageStream && state == .receiving }

    // MARK: Inputs

    /// The request headers are complete: refuse what is not a gRPC call served here before
    /// reading its message (PROTOCOL-HTTP2.md "Requests").
    mutating func receivedHeaders(_ head: Head, method: Method, now: NIODeadline) -> Actions {
        guard state == .idle else { return Actions() }
        state = .receiving
        path = head.path
        guard head.isPost else { return refuseHTTP("405") }
        // "If Content-Type does not begin with "application/grpc", gRPC servers SHOULD respond
        // with HTTP status of 415". gRPC-Web and other codecs are not served here.
        guard head.isGRPCProto else { return refuseHTTP("415") }
        guard head.path != nil, method.served else { return respond(.unknownMethod(head.path ?? "")) }
        if let encoding = head.encoding, encoding != "identity" {
            // "If a client sends a message compressed with an algorithm the server does not
            // support, the server SHOULD respond with UNIMPLEMENTED" (compression.md).
            extraTrailers.add("grpc-accept-encoding", "identity")
            return respond(.unsupportedEncoding(encoding))
        }
        if let repeated = head.repeatedHeader { return respond(.repeatedHeader(repeated)) }
        if head.badTimeout { return respond(.malformedTimeout) }
        isMessageStream = method.messageStream
        needsAdmission = method.needsAdmission
        guard let timeout = head.timeout else { return Actions() }
        let deadline = now + timeout
        self.timeout = timeout
        self.deadline = deadline
        deadlineArmed = true
        return Actions(.startDeadlineTimer(deadline))
    }

    /// Request bytes (DATA) arrived. A message stream's messages are answered at once through
    /// `reply` (the service's synchronous answer, or the status that ends the call). A chunk
    /// that holds a whole message is not copied: the message is a slice of it.
    mutating func receivedData(_ chunk: ByteBuffer,
                               reply: (ByteBuffer) -> Result<GRPCResponseMessage, GRPCStatus>) -> Actions {
        guard state == .receiving else { return Actions() }
        var actions = Actions()
        for event in reader?.feed(chunk) ?? [] {
            switch event {
            case .message(let message) where isMessageStream:
                switch reply(message) {
                case .success(let answer):
                    if bodyStarted {
                        actions.append(.sendMessage(answer))
                    } else {
                        bodyStarted = true
                        actions.append(.sendHeadersAndMessage(answer))
                    }
                case .failure(let status):
                    return actions + respond(status)
                }
            case .message(let message):
                // A unary method takes exactly one message (grpc-java: "More than one request
                // messages for unary call").
                guard self.message == nil else { return actions + respond(.secondMessage) }
                self.message = message
            case .tooLarge(let length):
                return actions + respond(.messageTooLarge(length, limit: maxMessageBytes))
            case .compressed:
                // Compressed-Flag 1 without a grpc-encoding we accepted (PROTOCOL-HTTP2.md).
                return actions + respond(.compressedWithoutEncoding)
            case .badFlag(let flag):
                return actions + respond(.badCompressedFlag(flag))
            }
        }
        return actions
    }

    /// The client half-closed (END_STREAM on HEADERS or DATA).
    mutating func receivedEndOfStream() -> Actions {
        requestEnded = true
        guard state == .receiving else { return Actions() }
        if reader?.hasPartialMessage ?? false { return respond(.endedInsideMessage) }
        if isMessageStream { return endMessageStream(nil) }
        // grpc-java: "Half-closed without a request".
        guard message != nil else { return respond(.endedWithoutMessage) }
        guard needsAdmission else { return dispatch() }
        state = .waitingForAdmission
        return Actions(.requestAdmission)
    }

    /// An admission slot is the call's (the owner took it off its queue, if it was queued).
    mutating func admissionGranted() -> Actions {
        guard state == .waitingForAdmission else { return Actions() }
        holdsSlot = true
        return dispatch()
    }

    /// No slot in time: refused (RESOURCE_EXHAUSTED) rather than started late.
    mutating func admissionRefused(_ message: String) -> Actions {
        guard state == .waitingForAdmission else { return Actions() }
        return respond(GRPCStatus(code: .resourceExhausted, message: message, exception: "OverloadedException"))
    }

    /// The service's answer (`GRPCCall.succeed`/`fail`). Ignored unless the call is
    /// dispatched: a second answer, or one after a reset, deadline or lost connection.
    mutating func answer(_ result: Result<GRPCResponseMessage, GRPCStatus>, trailers: [(String, String)] = []) -> Actions {
        guard state == .dispatched else { return Actions() }
        switch result {
        case .success(let message):
            state = .responding
            outcome = 0
            var block = Self.okTrailers
            if !trailers.isEmpty {
                block = HeaderBlock()
                block.add("grpc-status", "0")
                for (name, value) in trailers { block.add(name, value) }
            }
            var actions = Actions(.sendHeadersAndMessage(message), .sendTrailers(block))
            cancelDeadline(&actions)
            releaseSlot(&actions)
            return actions
        case .failure(let status):
            return respond(status)
        }
    }

    /// The owner refuses the call for a reason of its own (a budget): `status` ends it, if it
    /// was not answered yet.
    mutating func fail(_ status: GRPCStatus) -> Actions {
        guard state == .receiving || state == .waitingForAdmission || state == .dispatched else { return Actions() }
        return respond(status)
    }

    /// The deadline timer fired: DEADLINE_EXCEEDED, and a call still queued toward the core
    /// is dropped, not sent late.
    mutating func deadlineFired() -> Actions {
        deadlineArmed = false
        guard state == .receiving || state == .waitingForAdmission || state == .dispatched else { return Actions() }
        let wasDispatched = state == .dispatched
        var actions = respond(GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded", exception: nil))
        if wasDispatched { actions.append(.runCancel) }
        return actions
    }

    /// nghttp2 closed the stream: RST_STREAM from the client, a GOAWAY, or our end went out.
    /// A call not answered yet is cancelled; one reset away from its deadline after it was
    /// dispatched counts toward the connection's rapid-reset budget.
    mutating func streamClosed(now: NIODeadline) -> Actions {
        guard state != .closed else { return Actions() }
        let previous = state
        state = .closed
        var actions = Actions()
        if previous == .waitingForAdmission { actions.append(.leaveAdmissionQueue) }
        actions.append(.releaseRequestBytes)
        cancelDeadline(&actions)
        if previous == .dispatched { actions.append(.runCancel) }
        actions.append(.reportEnd(code: outcome >= 0 ? outcome : Int(GRPCStatusCode.cancelled.rawValue), status: failure))
        // A waiting call costs nothing: not counted. A client cancelling a call whose deadline
        // is about to pass is timing out, not abusing resets.
        if previous == .dispatched && !isNearDeadline(now) { actions.append(.countCancel) }
        releaseSlot(&actions)
        return actions
    }

    /// The connection went away: whatever the call held goes (its request bytes are the
    /// owner's to drop with the connection).
    mutating func connectionClosed() -> Actions {
        guard state != .closed else { return Actions() }
        let previous = state
        state = .closed
        var actions = Actions()
        cancelDeadline(&actions)
        if previous == .dispatched { actions.append(.runCancel) }
        releaseSlot(&actions)
        actions.append(.reportEnd(code: outcome >= 0 ? outcome : Int(GRPCStatusCode.cancelled.rawValue), status: failure))
        return actions
    }

    /// nghttp2 refused the stream's header block (over the limit) and resets the stream: what
    /// clients report for that is RESOURCE_EXHAUSTED.
    mutating func headerBlockRefused() {
        guard state == .idle || state == .receiving else { return }
        state = .responding
        outcome = Int(GRPCStatusCode.resourceExhausted.rawValue)
    }

    /// Within an eighth of its timeout (and 5 ms) of the deadline.
    func isNearDeadline(_ now: NIODeadline) -> Bool {
        guard let deadline, let timeout else { return false }
        return now + .nanoseconds(timeout.nanoseconds / 8) + .milliseconds(5) >= deadline
    }

    // MARK: Transitions

    /// Whether the stream keeps request bytes (a unary call's message until dispatch, a partial
    /// message) that share a read buffer much larger than themselves.
    var pinsReadBuffer: Bool {
        if let message, ByteBuffer.pinsLarger(message) { return true }
        return reader?.pinsLargerBuffer ?? false
    }

    /// Called when the read that brought request bytes is done and the stream still keeps
    /// some (no END_STREAM yet, or waiting for admission): they are copied into storage of
    /// their own, so that a stream keeps what the request budgets count and not a read buffer
    /// (up to 64 KiB) per stream. A call dispatched in the read it arrived in is never copied.
    mutating func compact(allocator: ByteBufferAllocator) {
        if let held = message, ByteBuffer.pinsLarger(held) { message = ByteBuffer.ownCopy(of: held, allocator: allocator) }
        reader?.compact()
    }

    private mutating func dispatch() -> Actions {
        guard let message else { return Actions() }
        self.message = nil
        state = .dispatched
        dropReader()
        return Actions(.dispatch(message), .releaseRequestBytes)
    }

    /// The status ends the call: trailers-only before any response message, else trailers
    /// after the body sent so far.
    private mutating func respond(_ status: GRPCStatus) -> Actions {
        if bodyStarted { return endMessageStream(status) }
        outcome = Int(status.code.rawValue)
        if status.code != .ok { failure = status }
        var block = HeaderBlock()
        block.add(":status", "200")
        block.add("content-type", "application/grpc")
        block.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { block.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
        if let exception = status.exception { block.add("cs-exception", exception) }
        for (name, value) in extraTrailers.pairs { block.add(name, value) }
        return finish(block)
    }

    /// A plain HTTP refusal of a request that is not gRPC at all; gRPC clients report UNKNOWN.
    private mutating func refuseHTTP(_ status: String) -> Actions {
        outcome = Int(GRPCStatusCode.unknown.rawValue)
        return finish(HeaderBlock([(":status", status)]))
    }

    /// One HEADERS frame ends our side of the stream.
    private mutating func finish(_ block: HeaderBlock) -> Actions {
        var actions = Actions()
        if state == .waitingForAdmission { actions.append(.leaveAdmissionQueue) }
        if state != .dispatched { actions.append(.releaseRequestBytes) }
        state = .responding
        dropReader()
        cancelDeadline(&actions)
        actions.append(.sendHeadersOnly(block))
        if !requestEnded { actions.append(.resetWhenSent) }
        releaseSlot(&actions)
        return actions
    }

    /// Ends a message stream whose body started: OK when the client half-closed (`status`
    /// nil), else `status`, in trailers after the answers queued so far.
    private mutating func endMessageStream(_ status: GRPCStatus?) -> Actions {
        guard bodyStarted else { return respond(status ?? GRPCStatus(code: .ok, message: "", exception: nil)) }
        var actions = Actions(.releaseRequestBytes)
        state = .responding
        dropReader()
        cancelDeadline(&actions)
        outcome = Int(status?.code.rawValue ?? 0)
        var trailers = Self.okTrailers
        if let status, status.code != .ok {
            failure = status
            trailers = HeaderBlock()
            trailers.add("grpc-status", String(status.code.rawValue))
            if !status.message.isEmpty { trailers.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
            if let exception = status.exception { trailers.add("cs-exception", exception) }
        }
        actions.append(.sendTrailers(trailers))
        if !requestEnded { actions.append(.resetWhenSent) }
        releaseSlot(&actions)
        return actions
    }

    private mutating func cancelDeadline(_ actions: inout Actions) {
        guard deadlineArmed else { return }
        deadlineArmed = false
        actions.append(.cancelDeadlineTimer)
    }

    private mutating func releaseSlot(_ actions: inout Actions) {
        guard holdsSlot else { return }
        holdsSlot = false
        actions.append(.releaseSlot)
    }

    private mutating func dropReader() {
        reader = nil
    }
}

extension HeaderBlock: Equatable {
    /// Same fields in the same order.
    public static func == (lhs: HeaderBlock, rhs: HeaderBlock) -> Bool {
        lhs.pairs.elementsEqual(rhs.pairs) { $0 == $1 }
    }
}
