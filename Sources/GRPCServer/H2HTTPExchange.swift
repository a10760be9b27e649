import ContextModel
import HTTPServing
import NIOCore
import NIOHTTP1

/// What a request's header block said, as `GRPCServerHandler` collects it field by field from
/// nghttp2: the fields gRPC reads, and (for a plain HTTP exchange) the others as
/// `name\0value\0` pairs, one allocation turned into `HTTPHeaders` only for an HTTP exchange.
struct H2RequestHead {
    var method = ""
    var isPost: Bool { method == "POST" }
    var path: String?
    var contentType: String?
    var encoding: String?
    var timeout: TimeAmount?
    /// `grpc-timeout` as sent (kept for an HTTP exchange only).
    var timeoutHeader: String?
    var badTimeout = false
    var tenant: String?
    /// The `idempotency-key` metadata or header.
    var idempotencyKey: String?
    var authorization: String?
    /// `RESTChecks.singleHeaders`: a tenant or credentials given twice.
    var repeatedHeader: String?
    var traceParent: TraceParent?
    var otherHeaders: [UInt8] = []

    /// What the gRPC call's state machine checks.
    var grpc: GRPCServerStream.Head {
        GRPCServerStream.Head(isPost: isPost, isGRPCProto: contentType.map(GRPCServerHandler.isGRPCProto) ?? false,
                              path: path, encoding: encoding, timeout: timeout, badTimeout: badTimeout,
                              repeatedHeader: repeatedHeader)
    }

    /// The request of a plain HTTP exchange with this head and `body`.
    func restRequest(body: ByteBuffer) -> RESTRequest {
        var headers = HTTPHeaders()
        var rest8 = otherHeaders[...]
        while let nameEnd = rest8.firstIndex(of: 0) {
            let valueStart = rest8.index(after: nameEnd)
            guard let valueEnd = rest8[valueStart...].firstIndex(of: 0) else { break }
            headers.add(name: String(decoding: rest8[..<nameEnd], as: UTF8.self),
                        value: String(decoding: rest8[valueStart..<valueEnd], as: UTF8.self))
            rest8 = rest8[rest8.index(after: valueEnd)...]
        }
        if let contentType { headers.add(name: "content-type", value: contentType) }
        if let timeoutHeader { headers.add(name: "grpc-timeout", value: timeoutHeader) }
        if let idempotencyKey { headers.add(name: "idempotency-key", value: idempotencyKey) }
        return RESTRequest(method: method, target: path ?? "/", contentType: contentType, tenant: tenant,
                           authorization: authorization, repeatedHeader: repeatedHeader,
                           body: body, headers: headers, idempotencyKey: idempotencyKey)
    }
}

/// A plain HTTP exchange on an HTTP/2 stream (REST, gRPC-Web, health over h2; see
/// `GRPCServerHandler`): its body is collected up to the `RESTResponder`'s limit, and it gets
/// one HTTP answer whose last DATA frame ends the stream, without trailers. Not a gRPC call:
/// no deadline, no cancel hook, no message framing. The handler carries out its I/O.
struct H2HTTPExchange {
    enum State: Equatable {
        case receiving, waitingForAdmission, dispatched, responding, closed
    }

    private(set) var state = State.receiving
    private var body: ByteBuffer?
    private let limit: Int
    private let tooLarge: RESTResponse?
    private(set) var requestEnded = false
    /// Holds a slot of the loop's admission until it is answered or ends.
    private var holdsSlot = false

    init(limit: Int, tooLarge: RESTResponse?, allocator: ByteBufferAllocator) {
        self.limit = limit
        self.tooLarge = tooLarge
        body = allocator.buffer(capacity: 0)
    }

    /// Collects request bytes; the refusal to send once the body passes its limit.
    mutating func receive(_ bytes: UnsafeRawBufferPointer) -> RESTResponse? {
        guard state == .receiving, var body else { return nil }
        guard body.readableBytes + bytes.count <= limit else { return tooLarge ?? RESTResponse(status: 413) }
        self.body = nil  // one reference, so the write below grows the buffer in place
        body.writeBytes(bytes)
        self.body = body
        return nil
    }

    /// The client half-closed: whether the request is now complete (it was still receiving).
    mutating func endOfStream() -> Bool {
        requestEnded = true
        return state == .receiving
    }

    mutating func waitForAdmission() {
        state = .waitingForAdmission
    }

    mutating func admitted() {
        holdsSlot = true
    }

    /// The body to hand to the responder; the exchange is dispatched.
    mutating func dispatch() -> ByteBuffer? {
        guard state == .receiving || state == .waitingForAdmission, let body else { return nil }
        self.body = nil
        state = .dispatched
        return body
    }

    /// May be answered now (not answered yet, not closed).
    var mayRespond: Bool { state == .receiving || state == .waitingForAdmission || state == .dispatched }

    /// Its answer is submitted.
    mutating func responded() {
        state = .responding
        body = nil
    }

    /// Gives up the admission slot: true if it held one (release it).
    mutating func releaseSlot() -> Bool {
        defer { holdsSlot = false }
        return holdsSlot
    }

    /// The stream closed: returns the state it was in.
    mutating func close() -> State {
        defer {
            state = .closed
            body = nil
        }
        return state
    }
}
