import ContextModel
import NIOCore
import NIOHTTP1

/// One REST call to the task core.
public struct UpstreamRequest: Sendable {
    public var method: HTTPMethod
    public var target: String
    /// `ContactCenterId` (CONTEXT-SERVICES.md §6).
    public var tenant: String?
    public var authorization: String?
    /// Canonical JSON, a batch (encoded straight into this buffer), or empty: written to the
    /// connection as it is, never copied again.
    public var body: ByteBuffer
    /// The body's media type; nil: application/json.
    public var contentType: String?
    /// `Idempotency-Key`, for a write sent on its own (vendor mode).
    public var idempotencyKey: String?
    /// The W3C `traceparent` header of the call (README, "Tracing").
    public var traceparent: String?

    public init(method: HTTPMethod, target: String, tenant: String? = nil, authorization: String? = nil, body: ByteBuffer = ByteBuffer(),
                contentType: String? = nil, idempotencyKey: String? = nil, traceparent: String? = nil) {
        self.method = method
        self.target = target
        self.tenant = tenant
        self.authorization = authorization
        self.body = body
        self.contentType = contentType
        self.idempotencyKey = idempotencyKey
        self.traceparent = traceparent
    }

    /// The plain REST call of a route (vendor mode): real path text, for a server that speaks
    /// only the contract.
    public init(_ route: RESTRoute, basePath: String, tenant: String?, authorization: String?, body: ByteBuffer) {
        self.init(method: route.httpMethod, target: route.target(basePath: basePath),
                  tenant: tenant, authorization: authorization, body: body)
    }
}

extension RESTRoute {
    /// The route's HTTP method, without going through its name.
    var httpMethod: HTTPMethod {
        switch self {
        case .startService, .endService, .startState, .endState, .startTask, .endTask: .POST
        case .deleteService: .DELETE
        case .queryService, .queryState, .queryTask, .queryTasks: .GET
        }
    }
}

public struct UpstreamResponse: Sendable, Equatable {
    public var status: Int
    public var location: String?
    /// As it came off the connection (no copy); for a batched call, a slice of the batch
    /// answer.
    public var body: ByteBuffer

    /// For 429/503: when to come back, as the core said.
    public var retryAfter: Int?
    /// The answer kept under the call's idempotency key, given again (`Idempotent-Replayed`).
    public var replayed: Bool

    public init(status: Int, location: String?, body: ByteBuffer, retryAfter: Int? = nil, replayed: Bool = false) {
        self.status = status
        self.location = location
        self.body = body
        self.retryAfter = retryAfter
        self.replayed = replayed
    }

    /// A response whose body is a byte array (tests, tools).
    public init(status: Int, location: String?, body: [UInt8], retryAfter: Int? = nil, replayed: Bool = false) {
        self.init(status: status, location: location, body: ByteBuffer(bytes: body), retryAfter: retryAfter, replayed: replayed)
    }

    /// The core's error, in the contract's shape; a body that is not that shape still gives
    /// the status with a generic message.
    public var contextError: ContextError {
        if let members = try? StrictJSON.readObject(body) {
            var message: String?
            var exception: String?
            for m in members {
                if m.key == "message", case .string(let s) = m.value { message = s }
                if m.key == "exception", case .string(let s) = m.value { exception = s }
            }
            if let message, let exception {
                return ContextError(status: status, exception: exception, message: message)
            }
        }
        return ContextError(status: status, exception: status >= 500 ? "InternalException" : "UpstreamException",
                            message: "the task core answered HTTP \(status)")
    }
}

/// Why a call got no answer from the core.
public enum UpstreamError: Error, Equatable, Sendable {
    /// No connection could be made, or it broke before the answer: the call may or may not
    /// have been applied, and is never resent (a start is not idempotent).
    case unavailable(String)
    /// No connection could take the call (every core down, backing off or ejected, or the
    /// pool shutting down): it was never sent, so nothing of it was applied.
    case notSent(String)
    /// The call's deadline passed before it could be sent.
    case deadlineExceeded
    /// Refused at once to shed load: the queue toward the core is full, or the call's
    /// deadline is sooner than calls are being answered. Nothing was sent.
    case overloaded(String)
    /// The core refused a whole batch (nothing of it was applied): its error, for each call.
    case rejected(ContextError)
}
