import NGHTTP2
import NIOCore

/// One gRPC client connection (h2c with prior knowledge) through the gateway's own nghttp2
/// edge, `HTTP2ClientSession`: unary calls as streams, answers read from the DATA frames and
/// the trailers (PROTOCOL-HTTP2.md). Everything on the channel's event loop.
final class GRPCClientHandler: ChannelInboundHandler, HTTP2ClientSessionDelegate, CallTransport {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// One call in flight. A class: nghttp2 reports a stream's events one by one, and each
    /// looks its record up once.
    private final class Stream {
        let tag: Int
        let method: LoadMethod
        var body: ByteBuffer
        let deadline: NIODeadline?
        var httpStatus = 0
        var grpcStatus: Int?
        var grpcMessage: String?
        /// The answer's bytes while they arrive in pieces (most come in one DATA frame and are
        /// read straight from it).
        var partial: ByteBuffer?
        /// nil until the message arrived; then the id it carries (0: none), or -1 if unreadable.
        var answer: Int64?
        var timedOut = false

        init(tag: Int, method: LoadMethod, body: ByteBuffer, deadline: NIODeadline?) {
            self.tag = tag
            self.method = method
            self.body = body
            self.deadline = deadline
        }
    }

    private let content: RequestContent
    private unowned let sink: any CallSink
    private let allocator: ByteBufferAllocator
    /// The request headers of each method, built once.
    private let headers: [HeaderBlock]
    private var session: HTTP2ClientSession?
    private var context: ChannelHandlerContext?
    private var streams: [Int32: Stream] = [:]
    private var startTaskRequest: ByteBuffer?
    private var inReadCycle = false
    private var flushScheduled = false
    private var closed = false
    private var refused = false
    private var sweep: RepeatedTask?

    init(content: RequestContent, sink: any CallSink, allocator: ByteBufferAllocator) {
        self.content = content
        self.sink = sink
        self.allocator = allocator
        let config = content.configuration
        headers = LoadMethod.allCases.map { method in
            var h = HeaderBlock()
            h.add(":method", "POST")
            h.add(":scheme", "http")
            h.add(":path", method.grpcPath)
            h.add(":authority", config.authority)
            h.add("content-type", "application/grpc")
            h.add("te", "trailers")
            if let timeout = config.timeout { h.add("grpc-timeout", grpcTimeoutValue(timeout)) }
            if let tenant = config.tenant { h.add("contactcenterid", tenant) }
            h.add("user-agent", "cs-gateway-load/1")
            return h
        }
    }

    // MARK: CallTransport

    var isUsable: Bool { !closed && !refused && session != nil }

    func prepareStartTask(serviceID: Int64) {
        var buffer = allocator.buffer(capacity: 256)
        ProtoCodec.encode(LoadCall(method: .startTask, serviceID: serviceID, step: -1), content.protoStartTask, into: &buffer)
        startTaskRequest = buffer
    }

    func send(_ call: LoadCall, tag: Int) {
        let body: ByteBuffer
        if call.step < 0, let prepared = startTaskRequest {
            body = prepared  // shares storage: each stream reads its own view
        } else {
            var buffer = allocator.buffer(capacity: 512)
            ProtoCodec.encode(call, content.proto(call), into: &buffer)
            body = buffer
        }
        guard let session, isUsable else {
            return failLater(tag, GRPCCode.unavailable, "connection closed")
        }
        let deadline = content.configuration.timeout.map { NIODeadline.now() + $0 }
        do {
            let id = try session.submitRequest(headers[call.method.rawValue], hasBody: true)
            streams[id] = Stream(tag: tag, method: call.method, body: body, deadline: deadline)
            scheduleFlush()
        } catch {
            // No stream ids left (2^30 per connection) or a session past GOAWAY: this
            // connection is done.
            refused = true
            failLater(tag, GRPCCode.unavailable, "cannot start a stream: \(error)")
        }
    }

    func close() {
        guard !closed, let context else { return }
        session?.submitGoAway()
        flush()
        context.close(promise: nil)
    }

    /// `send` never completes a call from inside itself (the driver would recurse).
    private func failLater(_ tag: Int, _ code: Int, _ message: String) {
        guard let context else { return }
        context.eventLoop.assumeIsolated().execute { self.sink.completed(tag: tag, outcome: .failed(code, message)) }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        do {
            session = try HTTP2ClientSession(delegate: self)
            flush()  // the connection preface and our SETTINGS
        } catch {
            context.close(promise: nil)
            return
        }
        if content.configuration.timeout != nil {
            // Deadlines are checked ten times a second: a client gives up at its deadline even
            // when the server does not answer at all.
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(100), delay: .milliseconds(100)) { _ in
                handler.value.expireDeadlines()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let session else { return }
        let buffer = unwrapInboundIn(data)
        inReadCycle = true
        do {
            try session.receive(buffer)
        } catch {
            // A connection error: nghttp2 queued a GOAWAY; send it and close.
            refused = true
            flush()
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        sweep?.cancel()
        let lost = streams.values.sorted { $0.tag < $1.tag }
        streams.removeAll()
        for stream in lost {
            sink.completed(tag: stream.tag, outcome: .failed(GRPCCode.unavailable, "connection closed"))
        }
        sink.transportClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        session = nil
    }

    // MARK: Output

    private func flush() {
        guard let context, let session else { return }
        var out = allocator.buffer(capacity: 0)
        do {
            try session.drainOutput(into: &out)
        } catch {
            refused = true
            context.close(promise: nil)
            return
        }
        if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
        if session.isFinished && !closed {
            // GOAWAY both ways and no stream left.
            closed = true
            context.close(promise: nil)
        }
    }

    /// Requests sent between reads (timers, the first batch) share one flush per tick.
    private func scheduleFlush() {
        guard !inReadCycle, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flush()
        }
    }

    private func expireDeadlines() {
        guard let session else { return }
        let now = NIODeadline.now()
        var any = false
        for (id, stream) in streams where !stream.timedOut {
            if let deadline = stream.deadline, deadline <= now {
                stream.timedOut = true
                session.submitReset(streamID: id, errorCode: 8)  // CANCEL (RFC 9113 §7): we gave up
                any = true
            }
        }
        if any { flush() }
    }

    // MARK: HTTP2ClientSessionDelegate

    func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
        guard let stream = streams[streamID] else { return }
        if equals(name, ":status") {
            stream.httpStatus = decimal(value) ?? 0
        } else if equals(name, "grpc-status") {
            stream.grpcStatus = decimal(value) ?? GRPCCode.unknown
        } else if equals(name, "grpc-message") {
            stream.grpcMessage = percentDecoded(value)
        }
    }

    func data(_ streamID: Int32, _ chunk: ByteBuffer) {
        guard let stream = streams[streamID] else { return }
        if stream.partial == nil, stream.answer == nil,
           let answer = chunk.withUnsafeReadableBytes({ bytes -> Int64? in
               guard let length = messageLength(bytes), bytes.count == 5 + length else { return nil }
               // The whole message in one frame, the common case: read it without copying.
               return ProtoCodec.decodeAnswer(stream.method, UnsafeRawBufferPointer(rebasing: bytes[5...])) ?? -1
           }) {
            stream.answer = answer
            return
        }
        if stream.answer != nil {
            stream.answer = -1  // a second message on a unary call
            return
        }
        var partial = stream.partial ?? allocator.buffer(capacity: chunk.readableBytes)
        stream.partial = nil  // one owner while it grows: no copy on write
        partial.writeImmutableBuffer(chunk)  // a copy: the read buffer the chunk is a slice of is not kept
        guard let length = partial.withUnsafeReadableBytes({ messageLength($0) }), partial.readableBytes >= 5 + length else {
            stream.partial = partial
            return
        }
        stream.answer = partial.readableBytes == 5 + length
            ? partial.withUnsafeReadableBytes { ProtoCodec.decodeAnswer(stream.method, UnsafeRawBufferPointer(rebasing: $0[5...])) } ?? -1
            : -1
    }

    func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        sink.completed(tag: stream.tag, outcome: outcome(stream, errorCode: errorCode))
    }

    func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        guard let stream = streams[streamID] else { return (0, true) }
        let n = min(into.count, stream.body.readableBytes)
        if n > 0, let base = into.baseAddress {
            stream.body.withUnsafeReadableBytes { UnsafeMutableRawBufferPointer(start: base, count: n).copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            stream.body.moveReaderIndex(forwardBy: n)
        }
        return (n, stream.body.readableBytes == 0)
    }

    // MARK: Answers

    /// A call's status, as a gRPC client sees it.
    private func outcome(_ stream: Stream, errorCode: UInt32) -> CallOutcome {
        if stream.timedOut { return .failed(GRPCCode.deadlineExceeded, "deadline passed before an answer (client)") }
        if let status = stream.grpcStatus {
            guard status == 0 else { return .failed(status, stream.grpcMessage) }
            switch stream.answer {
            case nil:
                return .failed(GRPCCode.internalError, "no answer message before OK")
            case let id? where id < 0 || (stream.method.createsResource && id == 0):
                return .failed(GRPCCode.internalError, "the answer is not a valid \(stream.method)Response")
            case let id?:
                return .ok(id)
            }
        }
        if errorCode != 0 {
            // grpc-go's table for a stream reset without a status (http_util.go).
            let code = switch errorCode {
            case 7: GRPCCode.unavailable  // REFUSED_STREAM: not processed, safe to retry
            case 8: GRPCCode.cancelled
            case 11: GRPCCode.resourceExhausted  // ENHANCE_YOUR_CALM
            case 12: GRPCCode.permissionDenied  // INADEQUATE_SECURITY
            default: GRPCCode.internalError
            }
            if errorCode == 7 { refused = true }
            return .failed(code, "stream reset by the server (HTTP/2 error \(errorCode))")
        }
        if stream.httpStatus != 200 && stream.httpStatus != 0 {
            // gRPC doc/http-grpc-status-mapping.md: an HTTP answer without a gRPC status.
            let code = switch stream.httpStatus {
            case 400: GRPCCode.internalError
            case 401: GRPCCode.unauthenticated
            case 403: GRPCCode.permissionDenied
            case 404: GRPCCode.unimplemented
            case 429, 502, 503, 504: GRPCCode.unavailable
            default: GRPCCode.unknown
            }
            return .failed(code, "HTTP status \(stream.httpStatus) without grpc-status")
        }
        return .failed(GRPCCode.internalError, "the stream ended without grpc-status")
    }
}

/// The length of the message whose 5-byte prefix starts `bytes`; nil before 5 bytes or when the
/// compressed flag is set (we offer no compression, so none may come back).
private func messageLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
    guard bytes.count >= 5, bytes[0] == 0 else { return nil }
    return Int(bytes[1]) << 24 | Int(bytes[2]) << 16 | Int(bytes[3]) << 8 | Int(bytes[4])
}

@inline(__always)
private func equals(_ raw: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
    guard raw.count == literal.utf8CodeUnitCount else { return false }
    let s = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
    return raw.elementsEqual(s)
}

private func decimal(_ raw: UnsafeRawBufferPointer) -> Int? {
    guard !raw.isEmpty, raw.count <= 9 else { return nil }
    var v = 0
    for b in raw {
        guard b >= 0x30 && b <= 0x39 else { return nil }
        v = v * 10 + Int(b - 0x30)
    }
    return v
}

/// `grpc-message` is percent-encoded UTF-8 (PROTOCOL-HTTP2.md, "Status-Message").
func percentDecoded(_ raw: UnsafeRawBufferPointer) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(raw.count)
    var i = 0
    func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
    while i < raw.count {
        if raw[i] == UInt8(ascii: "%"), i + 2 < raw.count, let h = hex(raw[i + 1]), let l = hex(raw[i + 2]) {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(raw[i])
            i += 1
        }
    }
    return String(decoding: out, as: UTF8.self)
}
