import ContextModel
import NIOCore

/// One unary gRPC call, complete: headers checked, its single message read.
public struct GRPCRequest {
    public var path: String
    public var message: ByteBuffer
    /// From `grpc-timeout`; nil when the client set none.
    public var deadline: NIODeadline?
    /// The `contactcenterid` metadata (CONTEXT-SERVICES.md §6).
    public var tenant: String?
    /// The `authorization` metadata, passed on to the core as is.
    public var authorization: String?
    /// The `idempotency-key` metadata (README, "Exactly once").
    public var idempotencyKey: String?
    /// The call's trace (README, "Tracing"): the client's `traceparent` continued, or a new
    /// trace; nil when the connection has no observer.
    public var trace: TraceContext?

    public init(path: String, message: ByteBuffer, deadline: NIODeadline?, tenant: String?, authorization: String?,
                idempotencyKey: String? = nil) {
        self.path = path
        self.message = message
        self.deadline = deadline
        self.tenant = tenant
        self.authorization = authorization
        self.idempotencyKey = idempotencyKey
    }
}

/// What serves the calls. Shared by every connection; `handle` is called on the calling
/// connection's event loop, and the call must be answered on that loop too.
public protocol GRPCService: Sendable {
    /// Whether `path` names a method served here: unknown ones are answered UNIMPLEMENTED
    /// as soon as their headers arrive, without reading the message.
    func serves(path: String) -> Bool
    func handle(_ request: GRPCRequest, call: GRPCCall, eventLoop: any EventLoop)
    /// Whether `path` (a method `serves` accepts) is a bidirectional stream answered message by
    /// message: each request message gets `respond(toStreamMessage:path:)`'s one response as
    /// it arrives, and the call ends OK when the client half-closes. Asked once per call, on
    /// native gRPC only (gRPC-Web calls are unary: `handle`). Server reflection is the one
    /// such method.
    func isMessageStream(path: String) -> Bool
    /// One request message of a message stream → its response message (framed: written once
    /// behind its prefix), or the status that ends the call. Synchronous, on the connection's
    /// event loop.
    func respond(toStreamMessage message: ByteBuffer, path: String) -> Result<GRPCResponseMessage, GRPCStatus>
    /// Whether a call of `path` takes a slot of the event loop's admission control
    /// (`LoopAdmission`): calls answered here at once (health, reflection) do not, so they are
    /// answered even while calls for the core wait.
    func needsAdmission(path: String) -> Bool
}

extension GRPCService {
    public func isMessageStream(path: String) -> Bool { false }
    public func needsAdmission(path: String) -> Bool { true }
    public func respond(toStreamMessage message: ByteBuffer, path: String) -> Result<GRPCResponseMessage, GRPCStatus> {
        .failure(GRPCStatus(code: .unimplemented, message: "\(path) is not a streaming method", exception: nil))
    }
}

/// What a `GRPCCall` answers through: the HTTP/2 stream the call came on
/// (`GRPCServerHandler`), or a gRPC-Web exchange (`GRPCWeb`). Used on the call's event loop only.
protocol GRPCCallHandle: AnyObject {
    var isActive: Bool { get }
    var deadline: NIODeadline? { get }
    /// Answers the call unless it was answered or ended already (then nothing happens).
    func answer(_ result: Result<GRPCResponseMessage, GRPCStatus>, trailers: [(String, String)])
    func onCancel(_ body: @escaping () -> Void)
}

/// One call, answered once: given to `GRPCService.handle` with its request. Not Sendable: use
/// it on the connection's event loop only. An answer after the call ended (answered already,
/// timed out, reset by the client, lost with its connection) is ignored.
public struct GRPCCall {
    /// Strong on purpose: an answer may arrive after the connection closed and its handler
    /// left the pipeline; the call then ignores it (`isActive` is false). An `unowned`
    /// reference to the connection here once crashed the gateway under load when clients
    /// went away with calls in flight.
    let handle: any GRPCCallHandle

    init(_ handle: any GRPCCallHandle) {
        self.handle = handle
    }

    /// False once the call was answered, timed out, cancelled by the client (RST_STREAM) or
    /// lost with its connection: work for it can be skipped.
    public var isActive: Bool { handle.isActive }

    /// The deadline of the call, if any.
    public var deadline: NIODeadline? { handle.deadline }

    /// Runs `body` if the call is cancelled (RST_STREAM, deadline, connection lost) before it
    /// is answered, so queued work for it can be dropped. At most one per call; runs at most
    /// once.
    public func onCancel(_ body: @escaping () -> Void) {
        handle.onCancel(body)
    }

    /// Sends the response message and an OK status. Its framed buffer becomes the response
    /// body as it is.
    public func succeed(_ message: GRPCResponseMessage) {
        handle.answer(.success(message), trailers: [])
    }

    /// Sends the response message and an OK status with more trailing metadata (lower-case
    /// names), e.g. `idempotent-replayed: true`.
    public func succeed(_ message: GRPCResponseMessage, trailers: [(String, String)]) {
        handle.answer(.success(message), trailers: trailers)
    }

    /// Sends a status-only answer (trailers-only response).
    public func fail(_ status: GRPCStatus) {
        handle.answer(.failure(status), trailers: [])
    }
}
