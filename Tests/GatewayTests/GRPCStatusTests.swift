import ContextModel
import Testing

@Suite("HTTP → gRPC status")
struct GRPCStatusTests {
    /// Every status of the contract (CONTEXT-SERVICES.md §5, and 405 from the routes), with
    /// the code it becomes.
    static let table: [(status: Int, exception: String, code: GRPCStatusCode)] = [
        (200, "", .ok),
        (201, "", .ok),
        (204, "", .ok),
        (400, "ValidationException", .invalidArgument),
        (401, "UnauthorizedException", .unauthenticated),
        (403, "ForbiddenException", .permissionDenied),
        (404, "NotFoundException", .notFound),
        (405, "MethodNotAllowedException", .unimplemented),
        (409, "ConflictException", .failedPrecondition),
        (409, "IdSpaceExhaustedException", .failedPrecondition),
        (413, "PayloadTooLargeException", .resourceExhausted),
        (415, "UnsupportedMediaTypeException", .internalError),
        (429, "OverloadedException", .resourceExhausted),
        (500, "InternalException", .internalError),
        (501, "InternalException", .unimplemented),
        (502, "InternalException", .unavailable),
        (503, "OverloadedException", .unavailable),
        (504, "InternalException", .deadlineExceeded),
        (302, "", .internalError),
        (418, "TeapotException", .internalError),
        (599, "", .internalError),
    ]

    @Test("Each HTTP status of the contract maps to its gRPC code", arguments: table)
    func mapping(_ row: (status: Int, exception: String, code: GRPCStatusCode)) {
        let error = ContextError(status: row.status, exception: row.exception, message: "m \(row.status)")
        let status = GRPCStatus(error)
        #expect(status.code == row.code)
        #expect(status.message == "m \(row.status)")
        #expect(status.exception == row.exception)
    }

    /// grpc-gateway `runtime/errors.go` HTTPStatusFromCode: gRPC → HTTP.
    static func grpcGatewayHTTPStatus(_ code: GRPCStatusCode) -> Int {
        switch code {
        case .ok: 200
        case .cancelled: 499
        case .invalidArgument, .failedPrecondition, .outOfRange: 400
        case .deadlineExceeded: 504
        case .notFound: 404
        case .alreadyExists, .aborted: 409
        case .permissionDenied: 403
        case .unauthenticated: 401
        case .resourceExhausted: 429
        case .unimplemented: 501
        case .unavailable: 503
        default: 500
        }
    }

    @Test("Read backwards, the table is grpc-gateway's except where it says why", arguments: table)
    func inverseOfGRPCGateway(_ row: (status: Int, exception: String, code: GRPCStatusCode)) {
        // The departures, each commented in GRPCStatus.code(httpStatus:exception:).
        let documented: [Int: Int] = [201: 200, 204: 200, 405: 501, 409: 400, 413: 429, 415: 500, 502: 503]
        let back = Self.grpcGatewayHTTPStatus(row.code)
        if let departure = documented[row.status] {
            #expect(back == departure)
        } else if ![200, 400, 401, 403, 404, 429, 500, 501, 503, 504].contains(row.status) {
            #expect(back == 500)  // statuses the contract does not name: INTERNAL
        } else {
            #expect(back == row.status)
        }
    }

    @Test("Codes are 0...16, named as in the gRPC documentation", arguments: GRPCStatusCode.allCases)
    func codes(_ code: GRPCStatusCode) {
        #expect(GRPCStatusCode(rawValue: code.rawValue) == code)
        #expect(code.description.allSatisfy { $0.isUppercase || $0 == "_" })
    }

    @Test("Numbers outside 0...16 are not codes")
    func outOfRange() {
        #expect(GRPCStatusCode.allCases.count == 17)
        #expect(GRPCStatusCode(rawValue: -1) == nil)
        #expect(GRPCStatusCode(rawValue: 17) == nil)
        #expect(GRPCStatusCode.internalError.description == "INTERNAL")
        #expect(GRPCStatusCode.cancelled.description == "CANCELLED")
    }
}
