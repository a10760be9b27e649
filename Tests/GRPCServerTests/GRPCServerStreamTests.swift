import ContextModel
import NIOCore
import Testing
@testable import GRPCServer
@testable import NGHTTP2

/// The gRPC call's state machine as a value, with a fake clock: every input in every state,
/// and the exact actions it asks of its handler.
@Suite("gRPC server stream state machine")
struct GRPCServerStreamTests {
    typealias SM = GRPCServerStream
    typealias A = GRPCServerStream.Action

    static let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
    static let unary = "/test.Echo/Unary"
    static let allocator = ByteBufferAllocator()

    static func head(path: String? = unary, post: Bool = true, proto: Bool = true, encoding: String? = nil,
                     timeout: TimeAmount? = .seconds(8), badTimeout: Bool = false, repeated: String? = nil) -> SM.Head {
        SM.Head(isPost: post, isGRPCProto: proto, path: path, encoding: encoding, timeout: timeout,
                badTimeout: badTimeout, repeatedHeader: repeated)
    }

    static func framed(_ payload: [UInt8], flag: UInt8 = 0) -> [UInt8] {
        let n = UInt32(payload.count)
        return [flag, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + payload
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { allocator.buffer(bytes: bytes) }

    /// The trailers-only block the machine builds for `status`.
    static func statusBlock(_ status: GRPCStatus, _ extra: [(String, String)] = []) -> HeaderBlock {
        var block = HeaderBlock([(":status", "200"), ("content-type", "application/grpc"),
                                 ("grpc-status", String(status.code.rawValue))])
        if !status.message.isEmpty { block.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
        if let exception = status.exception { block.add("cs-exception", exception) }
        for (name, value) in extra { block.add(name, value) }
        return block
    }

    static func trailers(_ status: GRPCStatus) -> HeaderBlock {
        var block = HeaderBlock([("grpc-status", String(status.code.rawValue))])
        if !status.message.isEmpty { block.add("grpc-message", GRPCFraming.percentEncode(status.message)) }
        if let exception = status.exception { block.add("cs-exception", exception) }
        return block
    }

    static let deadlineExceeded = GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded", exception: nil)
    static let cancelled = Int(GRPCStatusCode.cancelled.rawValue)

    static func feed(_ sm: inout SM, _ bytes: [UInt8],
                     reply: (ByteBuffer) -> Result<GRPCResponseMessage, GRPCStatus> = { _ in
                         Issue.record("a unary call replies to nothing")
                         return .success([])
                     }) -> SM.Actions {
        sm.receivedData(ByteBuffer(bytes: bytes), reply: reply)
    }

    // MARK: Machines in each state

    /// Headers accepted (deadline 8 s after t0).
    static func receiving(admission: Bool = false, timeout: TimeAmount? = .seconds(8), stream: Bool = false) -> SM {
        var sm = SM(maxMessageBytes: 100, allocator: allocator)
        _ = sm.receivedHeaders(head(path: stream ? "/test.Echo/Stream" : unary, timeout: timeout),
                               method: .init(served: true, messageStream: stream, needsAdmission: admission), now: t0)
        return sm
    }

    /// A complete unary request waiting for a slot.
    static func waiting() -> SM {
        var sm = receiving(admission: true)
        _ = feed(&sm, framed([1, 2]))
        #expect(sm.receivedEndOfStream() == [.requestAdmission])
        return sm
    }

    /// Dispatched with a slot.
    static func dispatched(admission: Bool = true, timeout: TimeAmount? = .seconds(8)) -> SM {
        var sm = receiving(admission: admission, timeout: timeout)
        _ = feed(&sm, framed([1, 2]))
        _ = sm.receivedEndOfStream()
        if admission { _ = sm.admissionGranted() }
        #expect(sm.state == .dispatched)
        return sm
    }

    static func responding() -> SM {
        var sm = dispatched()
        _ = sm.answer(.success([7]))
        #expect(sm.state == .responding)
        return sm
    }

    static func closed() -> SM {
        var sm = responding()
        _ = sm.streamClosed(now: t0)
        return sm
    }

    // MARK: Headers

    @Test("Headers of a served call: receiving, and the deadline timer starts at now + grpc-timeout")
    func headersAccepted() {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        #expect(sm.state == .idle)
        let actions = sm.receivedHeaders(Self.head(), method: .init(served: true), now: Self.t0)
        #expect(actions == [.startDeadlineTimer(Self.t0 + .seconds(8))])
        #expect(sm.state == .receiving)
        #expect(sm.deadline == Self.t0 + .seconds(8))
        #expect(sm.acceptsData)
        #expect(!sm.isActive)
        #expect(sm.receivedHeaders(Self.head(), method: .init(served: true), now: Self.t0) == [], "headers once")
    }

    @Test("Without grpc-timeout there is no deadline and no timer")
    func noTimeout() {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        #expect(sm.receivedHeaders(Self.head(timeout: nil), method: .init(served: true), now: Self.t0) == [])
        #expect(sm.deadline == nil)
    }

    @Test("What is not a gRPC call served here is refused at its headers, before any message",
          arguments: [
            ("GET", 0), ("text/plain", 1), ("unknown path", 2), ("gzip", 3), ("repeated tenant", 4), ("bad timeout", 5),
          ])
    func refusedAtHeaders(_ name: String, _ which: Int) {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        let head = switch which {
        case 0: Self.head(post: false)
        case 1: Self.head(proto: false)
        case 3: Self.head(encoding: "gzip")
        case 4: Self.head(repeated: "ContactCenterId")
        case 5: Self.head(timeout: nil, badTimeout: true)
        default: Self.head(path: "/nope.Nope/Nope")
        }
        let expected: HeaderBlock = switch which {
        case 0: HeaderBlock([(":status", "405")])
        case 1: HeaderBlock([(":status", "415")])
        case 3: Self.statusBlock(.unsupportedEncoding("gzip"), [("grpc-accept-encoding", "identity")])
        case 4: Self.statusBlock(.repeatedHeader("ContactCenterId"))
        case 5: Self.statusBlock(.malformedTimeout)
        default: Self.statusBlock(.unknownMethod("/nope.Nope/Nope"))
        }
        let actions = sm.receivedHeaders(head, method: .init(served: which != 2), now: Self.t0)
        #expect(actions == [.releaseRequestBytes, .sendHeadersOnly(expected), .resetWhenSent], "\(name)")
        #expect(sm.state == .responding)
        #expect(!sm.acceptsData)
        let code: GRPCStatusCode = switch which {
        case 0, 1: .unknown  // what gRPC clients report for an HTTP refusal
        case 4, 5: .invalidArgument
        default: .unimplemented
        }
        #expect(sm.outcome == Int(code.rawValue))
        #expect(sm.deadline == nil, "no timer for a refused call")
        // The client's end of stream now changes nothing; the close reports the status sent.
        #expect(sm.receivedEndOfStream() == [])
        let closed = sm.streamClosed(now: Self.t0)
        #expect(closed.count == 2)
        #expect(closed.first == .releaseRequestBytes)
        if case .reportEnd(let code, _) = closed.last { #expect(code != Self.cancelled) } else { Issue.record("no reportEnd") }
    }

    @Test("A header block nghttp2 refused: the stream resets, reported as RESOURCE_EXHAUSTED")
    func headerBlockRefused() {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        sm.headerBlockRefused()
        #expect(sm.state == .responding)
        #expect(sm.receivedHeaders(Self.head(), method: .init(served: true), now: Self.t0) == [])
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: 8, status: nil)])
    }

    // MARK: A unary call

    @Test("Unary without admission: message, end of stream → dispatched; the answer sends headers, message, OK trailers")
    func unaryHappyPath() {
        var sm = Self.receiving()
        #expect(Self.feed(&sm, Self.framed([1, 2, 3])) == [])
        #expect(sm.state == .receiving)
        #expect(sm.receivedEndOfStream() == [.dispatch(Self.buffer([1, 2, 3])), .releaseRequestBytes])
        #expect(sm.state == .dispatched)
        #expect(sm.isActive)
        #expect(!sm.acceptsData)
        #expect(sm.answer(.success([9])) == [.sendHeadersAndMessage([9]), .sendTrailers(SM.okTrailers), .cancelDeadlineTimer])
        #expect(sm.state == .responding)
        #expect(!sm.isActive)
        #expect(sm.outcome == 0)
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: 0, status: nil)])
        #expect(sm.state == .closed)
    }

    @Test("A message split over many DATA frames is one message")
    func splitMessage() {
        var sm = Self.receiving(timeout: nil)
        for byte in Self.framed([4, 5, 6, 7]) { #expect(Self.feed(&sm, [byte]) == []) }
        #expect(sm.receivedEndOfStream() == [.dispatch(Self.buffer([4, 5, 6, 7])), .releaseRequestBytes])
    }

    @Test("An answer with more trailing metadata puts it after grpc-status 0")
    func answerWithTrailers() {
        var sm = Self.dispatched(admission: false, timeout: nil)
        let actions = sm.answer(.success([1]), trailers: [("idempotent-replayed", "true")])
        #expect(actions == [.sendHeadersAndMessage([1]),
                            .sendTrailers(HeaderBlock([("grpc-status", "0"), ("idempotent-replayed", "true")]))])
    }

    @Test("A failed answer is trailers-only with its status; the close reports it")
    func failedAnswer() {
        var sm = Self.dispatched()
        let status = GRPCStatus(code: .notFound, message: "no such task 7", exception: "NotFoundException")
        #expect(sm.answer(.failure(status)) == [.cancelDeadlineTimer, .sendHeadersOnly(Self.statusBlock(status)), .releaseSlot])
        #expect(sm.failure == status)
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: 5, status: status)])
    }

    @Test("A second request message on a unary call is INTERNAL at once, and the client is asked to stop sending")
    func secondMessage() {
        var sm = Self.receiving()
        let actions = Self.feed(&sm, Self.framed([1]) + Self.framed([2]))
        #expect(actions == [.releaseRequestBytes, .cancelDeadlineTimer, .sendHeadersOnly(Self.statusBlock(.secondMessage)),
                            .resetWhenSent])
        #expect(sm.state == .responding)
        #expect(Self.feed(&sm, Self.framed([3])) == [], "nothing more is read")
        #expect(sm.receivedEndOfStream() == [])
    }

    @Test("End of stream inside a message (truncated) is INTERNAL; no resetWhenSent, the client is done")
    func truncated() {
        var sm = Self.receiving()
        _ = Self.feed(&sm, Array(Self.framed([1, 2, 3, 4]).prefix(7)))
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes, .cancelDeadlineTimer,
                                             .sendHeadersOnly(Self.statusBlock(.endedInsideMessage))])
        #expect(sm.state == .responding)
        #expect(sm.outcome == Int(GRPCStatusCode.internalError.rawValue))
    }

    @Test("End of stream inside a message prefix is truncated too")
    func truncatedPrefix() {
        var sm = Self.receiving(timeout: nil)
        _ = Self.feed(&sm, [0, 0, 0])
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes, .sendHeadersOnly(Self.statusBlock(.endedInsideMessage))])
    }

    @Test("End of stream without any message is INTERNAL")
    func noMessage() {
        var sm = Self.receiving(timeout: nil)
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes, .sendHeadersOnly(Self.statusBlock(.endedWithoutMessage))])
    }

    @Test("Framing errors: too large, compressed without encoding, a bad flag")
    func framingErrors() {
        var large = Self.receiving(timeout: nil)
        #expect(Self.feed(&large, [0, 0, 0, 0, 101]) == [.releaseRequestBytes,
                                                          .sendHeadersOnly(Self.statusBlock(.messageTooLarge(101, limit: 100))),
                                                          .resetWhenSent])
        var compressed = Self.receiving(timeout: nil)
        #expect(Self.feed(&compressed, Self.framed([1], flag: 1)).contains(.sendHeadersOnly(Self.statusBlock(.compressedWithoutEncoding))))
        var bad = Self.receiving(timeout: nil)
        #expect(Self.feed(&bad, Self.framed([1], flag: 7)).contains(.sendHeadersOnly(Self.statusBlock(.badCompressedFlag(7)))))
    }

    @Test("The owner's refusal (a budget) ends a receiving call with its status")
    func ownerRefusal() {
        var sm = Self.receiving()
        let status = GRPCStatus(code: .resourceExhausted, message: "budget", exception: "OverloadedException")
        #expect(sm.fail(status) == [.releaseRequestBytes, .cancelDeadlineTimer, .sendHeadersOnly(Self.statusBlock(status)),
                                    .resetWhenSent])
        #expect(sm.fail(status) == [], "once")
    }

    // MARK: Admission

    @Test("A complete call needing admission asks for a slot; granted, it is dispatched; its answer releases the slot last")
    func admissionGranted() {
        var sm = Self.waiting()
        #expect(sm.state == .waitingForAdmission)
        #expect(!sm.isActive)
        #expect(sm.admissionGranted() == [.dispatch(Self.buffer([1, 2])), .releaseRequestBytes])
        #expect(sm.admissionGranted() == [], "once")
        #expect(sm.answer(.success([3])).last == .releaseSlot)
    }

    @Test("Admission refused: RESOURCE_EXHAUSTED, the call leaves the queue; nothing was dispatched")
    func admissionRefused() {
        var sm = Self.waiting()
        let status = GRPCStatus(code: .resourceExhausted, message: "waited 2 s", exception: "OverloadedException")
        #expect(sm.admissionRefused("waited 2 s") == [.leaveAdmissionQueue, .releaseRequestBytes, .cancelDeadlineTimer,
                                                      .sendHeadersOnly(Self.statusBlock(status))])
        #expect(sm.state == .responding)
        #expect(sm.admissionGranted() == [], "a late grant changes nothing")
        #expect(sm.admissionRefused("again") == [])
    }

    @Test("Admission refusal or grant outside the waiting state changes nothing")
    func admissionOutOfState() {
        var sm = Self.receiving()
        #expect(sm.admissionGranted() == [])
        #expect(sm.admissionRefused("x") == [])
        #expect(sm.state == .receiving)
    }

    // MARK: Answers that must be ignored

    @Test("An answer after the client reset the stream is ignored")
    func answerAfterReset() {
        var sm = Self.dispatched()
        _ = sm.streamClosed(now: Self.t0)
        #expect(!sm.isActive)
        #expect(sm.answer(.success([1])) == [])
        #expect(sm.answer(.failure(.secondMessage)) == [])
        #expect(sm.state == .closed)
    }

    @Test("A second answer is ignored, whatever it says")
    func answerTwice() {
        var sm = Self.dispatched()
        #expect(!sm.answer(.success([1])).isEmpty)
        #expect(sm.answer(.success([2])) == [])
        #expect(sm.answer(.failure(.secondMessage)) == [])
        #expect(sm.fail(.secondMessage) == [])
        #expect(sm.outcome == 0)
    }

    @Test("An answer before dispatch (receiving, waiting) is ignored")
    func answerTooEarly() {
        var r = Self.receiving()
        #expect(r.answer(.success([1])) == [])
        var w = Self.waiting()
        #expect(w.answer(.success([1])) == [])
        #expect(w.state == .waitingForAdmission)
    }

    // MARK: RST_STREAM (the stream closes) in each state

    @Test("Reset while idle: CANCELLED reported")
    func resetIdle() {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: Self.cancelled, status: nil)])
        #expect(sm.state == .closed)
        #expect(sm.receivedHeaders(Self.head(), method: .init(served: true), now: Self.t0) == [])
    }

    @Test("Reset while receiving: the timer goes, no cancel hook, not counted as a cancel")
    func resetReceiving() {
        var sm = Self.receiving()
        _ = Self.feed(&sm, [0, 0])
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .cancelDeadlineTimer,
                                                  .reportEnd(code: Self.cancelled, status: nil)])
        #expect(Self.feed(&sm, [0, 0, 0]) == [])
        #expect(sm.receivedEndOfStream() == [])
    }

    @Test("Reset while waiting for admission: leaves the queue, costs nothing (not counted as a cancel)")
    func resetWaiting() {
        var sm = Self.waiting()
        #expect(sm.streamClosed(now: Self.t0) == [.leaveAdmissionQueue, .releaseRequestBytes, .cancelDeadlineTimer,
                                                  .reportEnd(code: Self.cancelled, status: nil)])
        #expect(sm.admissionGranted() == [])
    }

    @Test("Reset after dispatch: cancel hook, counted as a cancel, the slot released last")
    func resetDispatched() {
        var sm = Self.dispatched()
        #expect(sm.streamClosed(now: Self.t0 + .seconds(1)) == [
            .releaseRequestBytes, .cancelDeadlineTimer, .runCancel, .reportEnd(code: Self.cancelled, status: nil),
            .countCancel, .releaseSlot,
        ])
    }

    @Test("Reset after dispatch near the deadline (within an eighth of the timeout) is a timeout, not a counted cancel")
    func resetNearDeadline() {
        var sm = Self.dispatched()
        let near = Self.t0 + .seconds(8) - .milliseconds(900)
        #expect(sm.isNearDeadline(near))
        #expect(!sm.isNearDeadline(Self.t0 + .seconds(6)))
        let actions = sm.streamClosed(now: near)
        #expect(!actions.contains(.countCancel))
        #expect(actions.contains(.runCancel))
    }

    @Test("Reset after dispatch of a call without deadline is counted")
    func resetDispatchedNoDeadline() {
        var sm = Self.dispatched(admission: false, timeout: nil)
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .runCancel,
                                                  .reportEnd(code: Self.cancelled, status: nil), .countCancel])
    }

    @Test("Close while responding (our end went out, or the client reset meanwhile): the status sent is reported")
    func resetResponding() {
        var sm = Self.responding()
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: 0, status: nil)])
    }

    @Test("Close when closed: nothing")
    func resetClosed() {
        var sm = Self.closed()
        #expect(sm.streamClosed(now: Self.t0) == [])
        #expect(sm.connectionClosed() == [])
    }

    // MARK: The deadline in each state

    @Test("Deadline while idle: nothing (no timer can run yet)")
    func deadlineIdle() {
        var sm = SM(maxMessageBytes: 100, allocator: Self.allocator)
        #expect(sm.deadlineFired() == [])
        #expect(sm.state == .idle)
    }

    @Test("Deadline while receiving: DEADLINE_EXCEEDED, and the client is asked to stop sending")
    func deadlineReceiving() {
        var sm = Self.receiving()
        #expect(sm.deadlineFired() == [.releaseRequestBytes, .sendHeadersOnly(Self.statusBlock(Self.deadlineExceeded)),
                                       .resetWhenSent])
        #expect(sm.state == .responding)
        #expect(sm.outcome == 4)
    }

    @Test("Deadline while waiting for admission: leaves the queue, DEADLINE_EXCEEDED")
    func deadlineWaiting() {
        var sm = Self.waiting()
        #expect(sm.deadlineFired() == [.leaveAdmissionQueue, .releaseRequestBytes,
                                       .sendHeadersOnly(Self.statusBlock(Self.deadlineExceeded))])
        #expect(sm.admissionGranted() == [])
    }

    @Test("Deadline after dispatch: DEADLINE_EXCEEDED, the slot released, the cancel hook run; the late answer ignored")
    func deadlineDispatched() {
        var sm = Self.dispatched()
        #expect(sm.deadlineFired() == [.sendHeadersOnly(Self.statusBlock(Self.deadlineExceeded)), .releaseSlot, .runCancel])
        #expect(!sm.isActive)
        #expect(sm.answer(.success([1])) == [])
        // The close after our answer reports the deadline, and is no counted cancel.
        #expect(sm.streamClosed(now: Self.t0 + .seconds(8)) == [.releaseRequestBytes,
                                                                .reportEnd(code: 4, status: Self.deadlineExceeded)])
    }

    @Test("Deadline while responding or closed: nothing")
    func deadlineLate() {
        var responding = Self.responding()
        #expect(responding.deadlineFired() == [])
        var closed = Self.closed()
        #expect(closed.deadlineFired() == [])
    }

    // MARK: The connection closing in each state

    @Test("Connection lost while idle or receiving: CANCELLED reported, the timer goes")
    func connectionIdleReceiving() {
        var idle = SM(maxMessageBytes: 100, allocator: Self.allocator)
        #expect(idle.connectionClosed() == [.reportEnd(code: Self.cancelled, status: nil)])
        var receiving = Self.receiving()
        #expect(receiving.connectionClosed() == [.cancelDeadlineTimer, .reportEnd(code: Self.cancelled, status: nil)])
        #expect(receiving.state == .closed)
    }

    @Test("Connection lost while waiting: the timer goes (the owner drops its queue)")
    func connectionWaiting() {
        var sm = Self.waiting()
        #expect(sm.connectionClosed() == [.cancelDeadlineTimer, .reportEnd(code: Self.cancelled, status: nil)])
        #expect(sm.admissionGranted() == [])
    }

    @Test("Connection lost after dispatch: cancel hook, slot released; the answer that comes later is ignored")
    func connectionDispatched() {
        var sm = Self.dispatched()
        #expect(sm.connectionClosed() == [.cancelDeadlineTimer, .runCancel, .releaseSlot,
                                          .reportEnd(code: Self.cancelled, status: nil)])
        #expect(!sm.isActive)
        #expect(sm.answer(.success([1])) == [])
        #expect(sm.streamClosed(now: Self.t0) == [])
    }

    @Test("Connection lost while responding: the status sent is reported")
    func connectionResponding() {
        var sm = Self.responding()
        #expect(sm.connectionClosed() == [.reportEnd(code: 0, status: nil)])
    }

    // MARK: Message streams

    @Test("A message stream answers each message as it comes, then OK trailers at half-close")
    func messageStream() {
        var sm = Self.receiving(timeout: nil, stream: true)
        var asked: [ByteBuffer] = []
        let reply: (ByteBuffer) -> Result<GRPCResponseMessage, GRPCStatus> = { asked.append($0); return .success([UInt8($0.readableBytes)]) }
        #expect(Self.feed(&sm, Self.framed([1]) + Self.framed([2, 2]), reply: reply) == [
            .sendHeadersAndMessage([1]), .sendMessage([2]),
        ])
        #expect(sm.bodyMayGrow, "still receiving: an empty body is not the end")
        #expect(Self.feed(&sm, Self.framed([3, 3, 3]), reply: reply) == [.sendMessage([3])])
        #expect(asked == [Self.buffer([1]), Self.buffer([2, 2]), Self.buffer([3, 3, 3])])
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes, .sendTrailers(SM.okTrailers)])
        #expect(sm.state == .responding)
        #expect(!sm.bodyMayGrow)
        #expect(sm.outcome == 0)
    }

    @Test("A failing message ends the stream in trailers after the answers before it; nothing after it is read")
    func messageStreamFailure() {
        var sm = Self.receiving(timeout: nil, stream: true)
        let notFound = GRPCStatus(code: .notFound, message: "no such thing", exception: nil)
        var asked = 0
        let reply: (ByteBuffer) -> Result<GRPCResponseMessage, GRPCStatus> = { _ in
            asked += 1
            return asked == 2 ? .failure(notFound) : .success([0])
        }
        let actions = Self.feed(&sm, Self.framed([1]) + Self.framed([2]) + Self.framed([3]), reply: reply)
        #expect(actions == [.sendHeadersAndMessage([0]), .releaseRequestBytes, .sendTrailers(Self.trailers(notFound)),
                            .resetWhenSent])
        #expect(asked == 2)
        #expect(sm.failure == notFound)
    }

    @Test("A message stream with no message ends OK, trailers-only")
    func emptyMessageStream() {
        var sm = Self.receiving(timeout: nil, stream: true)
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes,
                                             .sendHeadersOnly(Self.statusBlock(GRPCStatus(code: .ok, message: "")))])
    }

    @Test("A message stream ending inside a message: INTERNAL in trailers after the answers")
    func messageStreamTruncated() {
        var sm = Self.receiving(timeout: nil, stream: true)
        _ = Self.feed(&sm, Self.framed([1]) + [0, 0], reply: { _ in .success([1]) })
        #expect(sm.receivedEndOfStream() == [.releaseRequestBytes, .sendTrailers(Self.trailers(.endedInsideMessage))])
    }

    @Test("A message stream's deadline after answers: DEADLINE_EXCEEDED in trailers")
    func messageStreamDeadline() {
        var sm = Self.receiving(stream: true)
        _ = Self.feed(&sm, Self.framed([1]), reply: { _ in .success([1]) })
        #expect(sm.deadlineFired() == [.releaseRequestBytes, .sendTrailers(Self.trailers(Self.deadlineExceeded)),
                                       .resetWhenSent])
    }

    @Test("A message stream reset mid-way: cancelled, not a counted cancel (it was never dispatched)")
    func messageStreamReset() {
        var sm = Self.receiving(timeout: nil, stream: true)
        _ = Self.feed(&sm, Self.framed([1]), reply: { _ in .success([1]) })
        #expect(sm.streamClosed(now: Self.t0) == [.releaseRequestBytes, .reportEnd(code: Self.cancelled, status: nil)])
        #expect(!sm.bodyMayGrow)
    }

    @Test("More answers in one input than are held inline keep their order")
    func manyActions() {
        var sm = Self.receiving(timeout: nil, stream: true)
        let messages = (0..<20).map { [UInt8($0)] }
        let actions = Self.feed(&sm, messages.flatMap { Self.framed($0) }, reply: { .success(GRPCResponseMessage($0.readableBytesView)) })
        #expect(actions.count == 20)
        #expect(Array(actions) == [.sendHeadersAndMessage([0])] + (1..<20).map { A.sendMessage([UInt8($0)]) })
        var built = SM.Actions()
        for i in 0..<12 { built.append(.sendMessage([UInt8(i)])) }
        #expect(built.first == .sendMessage([0]))
        #expect(built.last == .sendMessage([11]))
        #expect(built != built + [.runCancel])
    }
}
