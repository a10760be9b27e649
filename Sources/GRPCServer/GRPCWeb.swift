import ContextModel
import HTTPServing
import NIOCore

/// gRPC-Web (PROTOCOL-WEB.md) on any HTTP exchange, HTTP/1.1 or HTTP/2: the request body is
/// the same length-prefixed message as gRPC's (base64 in the `-text` modes), and the answer
/// is an ordinary HTTP 200 whose body holds the response message, then the trailers as a
/// frame of their own (flag 0x80, `name:value\r\n` lines). Every status, errors included,
/// travels in that trailer frame, so a browser reads it the same way in both cases.
///
/// The call itself goes to the same `GRPCService` as native gRPC: only the framing differs.
public enum GRPCWeb {
    public enum Mode: Sendable, Equatable {
        case binary, text

        var contentType: String {
            switch self {
            case .binary: "application/grpc-web+proto"
            case .text: "application/grpc-web-text+proto"
            }
        }
    }

    public enum Request: Sendable {
        case call(Mode)
        /// gRPC-Web with a codec other than protobuf: this 415.
        case unsupported(RESTResponse)
    }

    /// What a content type asks for: nil when it is not gRPC-Web at all.
    public static func classify(contentType: String?) -> Request? {
        guard let contentType, let base = RESTChecks.mediaType(contentType) else { return nil }
        switch base {
        case "application/grpc-web", "application/grpc-web+proto": return .call(.binary)
        case "application/grpc-web-text", "application/grpc-web-text+proto": return .call(.text)
        default:
            guard base.hasPrefix("application/grpc-web") else { return nil }
            return .unsupported(RESTResponse(status: 415, body: ContextError(
                status: 415, exception: "UnsupportedMediaTypeException",
                message: "gRPC-Web is served with protobuf messages only; got \(contentType)").jsonBody))
        }
    }

    /// Serves one gRPC-Web call. `headers` are added to the answer (CORS); `trace` is the
    /// call's trace context (README, "Tracing").
    public static func serve(
        _ request: RESTRequest, mode: Mode, service: any GRPCService, eventLoop: any EventLoop,
        maxMessageBytes: Int, headers: [RESTResponse.Field] = [], trace: TraceContext? = nil
    ) -> EventLoopFuture<RESTResponse> {
        let path = String(request.target.prefix { $0 != "?" })
        guard request.method == "POST" else {
            return eventLoop.makeSucceededFuture(RESTResponse(.methodNotAllowed(request.method, path: path), allow: ["POST"]))
        }
        let call = Call(mode: mode, headers: headers, eventLoop: eventLoop)
        let answer = GRPCCall(call)
        guard service.serves(path: path) else {
            answer.fail(.unknownMethod(path))
            return call.promise.futureResult
        }
        if let repeated = request.repeatedHeader {
            answer.fail(.repeatedHeader(repeated))
            return call.promise.futureResult
        }
        if let encoding = request.headers.first(name: "grpc-encoding"), encoding != "identity" {
            answer.fail(.unsupportedEncoding(encoding))
            return call.promise.futureResult
        }
        var deadline: NIODeadline?
        if let value = request.headers.first(name: "grpc-timeout") {
            guard let timeout = GRPCFraming.parseTimeout(value.utf8) else {
                answer.fail(.malformedTimeout)
                return call.promise.futureResult
            }
            deadline = .now() + timeout
        }
        let message: ByteBuffer
        switch readMessage(request.body, mode: mode, maxMessageBytes: maxMessageBytes) {
        case .success(let m): message = m
        case .failure(let status):
            answer.fail(status)
            return call.promise.futureResult
        }
        if let deadline { call.arm(deadline) }
        var grpcRequest = GRPCRequest(path: path, message: message, deadline: deadline, tenant: request.tenant,
                                      authorization: request.authorization,
                                      idempotencyKey: request.idempotencyKey ?? request.headers.first(name: "idempotency-key"))
        grpcRequest.trace = trace
        service.handle(grpcRequest, call: answer, eventLoop: eventLoop)
        return call.promise.futureResult
    }

    /// The one request message of a unary call, with the checks native gRPC makes.
    static func readMessage(_ body: ByteBuffer, mode: Mode, maxMessageBytes: Int) -> Result<ByteBuffer, GRPCStatus> {
        var bytes = body
        if mode == .text {
            guard let decoded = Base64.decode(Array(body.readableBytesView)) else {
                return .failure(GRPCStatus(code: .internalError, message: "the request body is not valid base64", exception: nil))
            }
            bytes = ByteBuffer(bytes: decoded)
        }
        var reader = GRPCMessageReader(maxMessageBytes: maxMessageBytes, allocator: ByteBufferAllocator())
        var message: ByteBuffer?
        let events = reader.feed(bytes)  // in place: the message is a slice of the body
        for event in events {
            switch event {
            case .message(let m):
                guard message == nil else { return .failure(.secondMessage) }
                message = m
            case .tooLarge(let length):
                return .failure(.messageTooLarge(length, limit: maxMessageBytes))
            case .compressed:
                return .failure(.compressedWithoutEncoding)
            case .badFlag(let flag):
                return .failure(.badCompressedFlag(flag))
            }
        }
        if reader.hasPartialMessage { return .failure(.endedInsideMessage) }
        guard let message else { return .failure(.endedWithoutMessage) }
        return .success(message)
    }

    /// The body of an answer: the message frame (on success), then the trailer frame.
    static func responseBody(_ result: Result<GRPCResponseMessage, GRPCStatus>, mode: Mode,
                             extra: [(String, String)] = []) -> [UInt8] {
        var out: [UInt8] = []
        var trailers = ""
        switch result {
        case .success(let message):
            out.reserveCapacity(message.count + 40)
            // The message frame is gRPC's own: the framed message as it is.
            out.append(contentsOf: message.framed.readableBytesView)
            trailers = "grpc-status:0\r\n"
            for (name, value) in extra { trailers += "\(name):\(value)\r\n" }
        case .failure(let status):
            trailers = "grpc-status:\(status.code.rawValue)\r\n"
            if !status.message.isEmpty { trailers += "grpc-message:\(GRPCFraming.percentEncode(status.message))\r\n" }
            if let exception = status.exception { trailers += "cs-exception:\(exception)\r\n" }
        }
        appendFrame(flag: 0x80, Array(trailers.utf8), to: &out)
        return mode == .text ? Base64.encode(out) : out
    }

    private static func appendFrame(flag: UInt8, _ payload: [UInt8], to out: inout [UInt8]) {
        let n = UInt32(payload.count)
        out.append(flag)
        out.append(UInt8(truncatingIfNeeded: n >> 24))
        out.append(UInt8(truncatingIfNeeded: n >> 16))
        out.append(UInt8(truncatingIfNeeded: n >> 8))
        out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: payload)
    }

    /// One gRPC-Web call's answer, once: its `GRPCCall` writes here, and the exchange's HTTP
    /// answer is the promise's.
    final class Call: GRPCCallHandle {
        let mode: Mode
        let headers: [RESTResponse.Field]
        let promise: EventLoopPromise<RESTResponse>
        private let eventLoop: any EventLoop
        private var done = false
        private(set) var deadline: NIODeadline?
        private var timer: Scheduled<Void>?
        private var cancel: (() -> Void)?

        init(mode: Mode, headers: [RESTResponse.Field], eventLoop: any EventLoop) {
            self.mode = mode
            self.headers = headers
            self.eventLoop = eventLoop
            self.promise = eventLoop.makePromise(of: RESTResponse.self)
        }

        func arm(_ deadline: NIODeadline) {
            self.deadline = deadline
            timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                guard let self else { return }
                let cancel = self.cancel
                self.answer(.failure(GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded", exception: nil)),
                            trailers: [])
                cancel?()
            }
        }

        func onCancel(_ body: @escaping () -> Void) {
            if !done { cancel = body }
        }

        var isActive: Bool { !done }

        func answer(_ result: Result<GRPCResponseMessage, GRPCStatus>, trailers: [(String, String)]) {
            guard !done else { return }
            done = true
            cancel = nil
            timer?.cancel()
            promise.succeed(RESTResponse(status: 200, body: GRPCWeb.responseBody(result, mode: mode, extra: trailers),
                                         contentType: mode.contentType, headers: headers))
        }
    }
}

/// RFC 4648 base64 with padding, for gRPC-Web's text mode. Decoding accepts what PROTOCOL-WEB
/// allows a client to send: several padded chunks one after another.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return out
    }

    /// Nil for anything but whole padded quads of the alphabet (chunks may follow padding).
    static func decode(_ text: [UInt8]) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count / 4 * 3)
        var i = 0
        while i < text.count {
            let a = values[Int(text[i])], b = values[Int(text[i + 1])]
            guard a != 0xFF, b != 0xFF else { return nil }
            let c3 = text[i + 2], c4 = text[i + 3]
            if c3 == UInt8(ascii: "=") {
                guard c4 == UInt8(ascii: "="), b & 0x0F == 0 else { return nil }
                out.append(a << 2 | b >> 4)
            } else if c4 == UInt8(ascii: "=") {
                let c = values[Int(c3)]
                guard c != 0xFF, c & 0x03 == 0 else { return nil }
                out.append(a << 2 | b >> 4)
                out.append(b << 4 | c >> 2)
            } else {
                let c = values[Int(c3)], d = values[Int(c4)]
                guard c != 0xFF, d != 0xFF else { return nil }
                out.append(a << 2 | b >> 4)
                out.append(b << 4 | c >> 2)
                out.append(c << 6 | d)
            }
            i += 4
        }
        return out
    }
}
