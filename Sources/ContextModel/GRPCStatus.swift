/// A gRPC status code (gRPC `doc/statuscodes.md`). Open like grpc-swift's `RPCError.Code`: a
/// struct, not an enum, so a peer's code this table does not know still round-trips by number.
public struct GRPCStatusCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: Int

    /// Any code a peer may send: gRPC status codes are 0...16, and a receiver must treat other
    /// numbers as UNKNOWN, so they are refused here.
    public init?(rawValue: Int) {
        guard (0...16).contains(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    private init(_ rawValue: Int) {
        self.rawValue = rawValue
    }

    public static let ok = GRPCStatusCode(0)
    public static let cancelled = GRPCStatusCode(1)
    public static let unknown = GRPCStatusCode(2)
    public static let invalidArgument = GRPCStatusCode(3)
    public static let deadlineExceeded = GRPCStatusCode(4)
    public static let notFound = GRPCStatusCode(5)
    public static let alreadyExists = GRPCStatusCode(6)
    public static let permissionDenied = GRPCStatusCode(7)
    public static let resourceExhausted = GRPCStatusCode(8)
    public static let failedPrecondition = GRPCStatusCode(9)
    public static let aborted = GRPCStatusCode(10)
    public static let outOfRange = GRPCStatusCode(11)
    public static let unimplemented = GRPCStatusCode(12)
    public static let internalError = GRPCStatusCode(13)
    public static let unavailable = GRPCStatusCode(14)
    public static let dataLoss = GRPCStatusCode(15)
    public static let unauthenticated = GRPCStatusCode(16)

    /// Every code, in numeric order.
    public static let allCases: [GRPCStatusCode] = (0...16).map(GRPCStatusCode.init)

    /// The name in the gRPC documentation: `INVALID_ARGUMENT`.
    public var description: String {
        switch rawValue {
        case 0: "OK"
        case 1: "CANCELLED"
        case 2: "UNKNOWN"
        case 3: "INVALID_ARGUMENT"
        case 4: "DEADLINE_EXCEEDED"
        case 5: "NOT_FOUND"
        case 6: "ALREADY_EXISTS"
        case 7: "PERMISSION_DENIED"
        case 8: "RESOURCE_EXHAUSTED"
        case 9: "FAILED_PRECONDITION"
        case 10: "ABORTED"
        case 11: "OUT_OF_RANGE"
        case 12: "UNIMPLEMENTED"
        case 13: "INTERNAL"
        case 14: "UNAVAILABLE"
        case 15: "DATA_LOSS"
        default: "UNAUTHENTICATED"
        }
    }
}

/// The status a gRPC call ends with: `grpc-status`, `grpc-message`, and the contract's exception
/// name (CONTEXT-SERVICES.md §5), which the gateway sends as the trailing metadata `cs-exception`
/// so that binary clients can tell `ConflictException` from `IdSpaceExhaustedException`.
public struct GRPCStatus: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: GRPCStatusCode
    public var message: String
    /// The contract's exception name, or nil for failures outside the contract (a request that
    /// is not protobuf, say).
    public var exception: String?

    public init(code: GRPCStatusCode, message: String, exception: String? = nil) {
        self.code = code
        self.message = message
        self.exception = exception
    }

    /// A contract error as a gRPC status: the code from `code(httpStatus:exception:)`, the
    /// core's message and exception unchanged (§7).
    public init(_ error: ContextError) {
        self.init(
            code: GRPCStatus.code(httpStatus: error.status, exception: error.exception),
            message: error.message, exception: error.exception)
    }

    public var description: String {
        exception.map { "\(code) (\($0)): \(message)" } ?? "\(code): \(message)"
    }

    /// CONTEXT-SERVICES.md §7: the one HTTP → gRPC table. Its peer is grpc-gateway's
    /// `runtime/errors.go` `HTTPStatusFromCode` (gRPC → HTTP), read backwards; the entries that
    /// are not simply its inverse say why.
    public static func code(httpStatus: Int, exception: String) -> GRPCStatusCode {
        switch httpStatus {
        case 200...299: return .ok
        case 400: return .invalidArgument
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .notFound
        case 405, 501:
            // The gateway calls only routes of the contract, so a 405 means this core (a vendor
            // core, say) does not serve the operation at all: UNIMPLEMENTED, which grpc-gateway
            // sends as 501.
            return .unimplemented
        case 409 where exception == "IdSpaceExhaustedException":
            // Not RESOURCE_EXHAUSTED: clients back off and retry that one (it is also our
            // 413/429), but this service will never issue another id. The caller must start a
            // new service first, which is FAILED_PRECONDITION's "do not retry until the system
            // state has been explicitly fixed" (statuscodes.md); `cs-exception` tells the two
            // 409s apart.
            return .failedPrecondition
        case 409 where exception == "IdempotencyKeyInProgressException":
            // Another call with the same Idempotency-Key is being processed right now: a
            // concurrency conflict that a retry a moment later resolves (it then gets the first
            // call's answer), which is ABORTED's "retry at a higher level" (statuscodes.md).
            return .aborted
        case 409:
            // ConflictException: the resource is already completed. Not ALREADY_EXISTS (nothing
            // is being created) nor ABORTED (no concurrency conflict: a retry fails the same way).
            return .failedPrecondition
        case 413:
            // gRPC's own answer to a message over the receive limit.
            return .resourceExhausted
        case 422:
            // IdempotencyKeyMismatchException: the key was used for another request. Retrying
            // never helps, the caller must use a new key (IETF httpapi idempotency-key draft,
            // §2.7): FAILED_PRECONDITION.
            return .failedPrecondition
        case 415:
            // The gateway always sends application/json: a 415 means the gateway and the core
            // disagree on the wire format, a broken invariant of the system, not anything the
            // caller can change in its request.
            return .internalError
        case 429: return .resourceExhausted
        case 502, 503:
            // 502 only comes from a proxy between the gateway and the core: the core is not
            // reachable, as gRPC's http-grpc-status-mapping.md says.
            return .unavailable
        case 504: return .deadlineExceeded
        default:
            // 500 and every status the contract does not name.
            return .internalError
        }
    }
}
