/// An error in the contract's shape (CONTEXT-SERVICES.md §5): an HTTP status, the vendor's
/// exception name and a human message. Every 4xx/5xx the core or the gateway answers is one
/// of these, rendered as `{"message":"…","exception":"…"}`, never a stack trace.
public struct ContextError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var exception: String
    public var message: String

    public init(status: Int, exception: String, message: String) {
        self.status = status
        self.exception = exception
        self.message = message
    }

    public var description: String { "\(status) \(exception): \(message)" }

    /// The JSON body of the vendor's 8.5 error shape.
    public var jsonBody: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count + exception.utf8.count + 32)
        out.append(UInt8(ascii: "{"))
        JSONWriter.appendKey("message", to: &out)
        JSONWriter.appendString(message, to: &out)
        out.append(UInt8(ascii: ","))
        JSONWriter.appendKey("exception", to: &out)
        JSONWriter.appendString(exception, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}

extension ContextError {
    public static func validation(_ message: String) -> ContextError {
        ContextError(status: 400, exception: "ValidationException", message: message)
    }

    public static func unauthorized(_ message: String = "credentials are required") -> ContextError {
        ContextError(status: 401, exception: "UnauthorizedException", message: message)
    }

    public static func notFound(_ message: String) -> ContextError {
        ContextError(status: 404, exception: "NotFoundException", message: message)
    }

    /// The vendor's wording: "There are no service found for : 21456878".
    public static func notFound(_ kind: ResourceKind, _ id: Int64) -> ContextError {
        .notFound("There are no \(kind.name) found for : \(id)")
    }

    public static func methodNotAllowed(_ method: String, path: String) -> ContextError {
        ContextError(status: 405, exception: "MethodNotAllowedException",
                     message: "method \(method) is not allowed on \(path)")
    }

    public static func conflict(_ message: String) -> ContextError {
        ContextError(status: 409, exception: "ConflictException", message: message)
    }

    /// CONTEXT-SERVICES.md §1 (decided): a service's 32-bit counter would pass 2,147,483,647.
    public static func idSpaceExhausted(_ kind: ResourceKind, serviceID: Int64) -> ContextError {
        ContextError(status: 409, exception: "IdSpaceExhaustedException",
                     message: "service \(serviceID) has used every \(kind.name) id up to 2147483647")
    }

    public static func payloadTooLarge(limit: Int) -> ContextError {
        ContextError(status: 413, exception: "PayloadTooLargeException",
                     message: "body larger than \(limit) bytes")
    }

    /// RFC 6585 §5: a request head over the header limit (HTTP/1.1; HTTP/2 resets the stream).
    public static func headersTooLarge(limit: Int) -> ContextError {
        ContextError(status: 431, exception: "RequestHeaderFieldsTooLargeException",
                     message: "request header fields larger than \(limit) bytes")
    }

    public static func unsupportedMediaType(_ contentType: String?) -> ContextError {
        let got = contentType.map { "got \($0)" } ?? "no Content-Type"
        return ContextError(status: 415, exception: "UnsupportedMediaTypeException",
                            message: "a body must be application/json; \(got)")
    }

    public static func overloaded(status: Int = 503, _ message: String) -> ContextError {
        ContextError(status: status, exception: "OverloadedException", message: message)
    }

    /// The storage behind the core cannot be reached (a database restarting, a network
    /// fault): nothing was applied, come back soon (503 ⇄ UNAVAILABLE, with `Retry-After`).
    public static func storeUnavailable(_ message: String) -> ContextError {
        ContextError(status: 503, exception: "StoreUnavailableException", message: message)
    }

    /// The storage connection broke while a commit was under way: the write may or may not
    /// have been applied. Not 503, which tells a client it may simply retry: a retried start
    /// could then run twice (an idempotency key settles it).
    public static func outcomeUnknown(_ message: String) -> ContextError {
        ContextError(status: 500, exception: "OutcomeUnknownException", message: message)
    }

    /// IETF httpapi "The Idempotency-Key HTTP Header Field", §2.7: the key was first used for
    /// another request (another operation, ids or body).
    public static func idempotencyKeyMismatch() -> ContextError {
        ContextError(status: 422, exception: "IdempotencyKeyMismatchException",
                     message: "this Idempotency-Key was used for a different request; use a new key")
    }

    /// The same draft, §2.7: a call with this key is still being processed.
    public static func idempotencyKeyInProgress() -> ContextError {
        ContextError(status: 409, exception: "IdempotencyKeyInProgressException",
                     message: "a request with this Idempotency-Key is still being processed; retry shortly")
    }

    /// The gateway gave up waiting for the task core (§7: 504 ⇄ DEADLINE_EXCEEDED).
    public static func gatewayTimeout(_ message: String) -> ContextError {
        ContextError(status: 504, exception: "GatewayTimeoutException", message: message)
    }

    public static func internalError(_ message: String) -> ContextError {
        ContextError(status: 500, exception: "InternalException", message: message)
    }

    /// Maps a reader failure to the contract: 413 for size, 400 for everything else.
    public init(_ error: JSONReadError) {
        switch error {
        case .tooLarge(let limit):
            self = .payloadTooLarge(limit: limit)
        default:
            self = .validation(error.message)
        }
    }
}
