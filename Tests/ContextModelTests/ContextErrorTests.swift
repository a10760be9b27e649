import Testing
@testable import ContextModel

// The errors of CONTEXT-SERVICES.md §5: status, exception, and the vendor's 8.5 body
// `{"message":"…","exception":"…"}`.

struct ErrorCase: Sendable, CustomTestStringConvertible {
    var name: String
    var error: ContextError
    var status: Int
    var exception: String
    var message: String
    /// The exact body.
    var body: String

    var testDescription: String { name }
}

private enum ErrorFixtures {
    static func row(_ name: String, _ error: ContextError, _ status: Int, _ exception: String, _ message: String, _ body: String) -> ErrorCase {
        ErrorCase(name: name, error: error, status: status, exception: exception, message: message, body: body)
    }

    static let table: [ErrorCase] = [
        row("validation", .validation("state_id must be a 32-bit integer from 1 to 2147483647, got 0"),
            400, "ValidationException", "state_id must be a 32-bit integer from 1 to 2147483647, got 0",
            #"{"message":"state_id must be a 32-bit integer from 1 to 2147483647, got 0","exception":"ValidationException"}"#),
        row("unauthorized, default message", .unauthorized(), 401, "UnauthorizedException", "credentials are required",
            #"{"message":"credentials are required","exception":"UnauthorizedException"}"#),
        row("unauthorized, own message", .unauthorized("wrong password"), 401, "UnauthorizedException", "wrong password",
            #"{"message":"wrong password","exception":"UnauthorizedException"}"#),
        row("not found, the vendor's wording", .notFound(.service, 21456878), 404, "NotFoundException",
            "There are no service found for : 21456878",
            #"{"message":"There are no service found for : 21456878","exception":"NotFoundException"}"#),
        row("not found, a state", .notFound(.state, 3), 404, "NotFoundException", "There are no state found for : 3",
            #"{"message":"There are no state found for : 3","exception":"NotFoundException"}"#),
        row("not found, a task", .notFound(.task, 15928), 404, "NotFoundException", "There are no task found for : 15928",
            #"{"message":"There are no task found for : 15928","exception":"NotFoundException"}"#),
        row("not found, free text", .notFound("no operation at /x"), 404, "NotFoundException", "no operation at /x",
            #"{"message":"no operation at /x","exception":"NotFoundException"}"#),
        row("method not allowed", .methodNotAllowed("PUT", path: "/genesys/1/cs/services/1"), 405, "MethodNotAllowedException",
            "method PUT is not allowed on /genesys/1/cs/services/1",
            #"{"message":"method PUT is not allowed on /genesys/1/cs/services/1","exception":"MethodNotAllowedException"}"#),
        row("conflict", .conflict("task 3 is already completed"), 409, "ConflictException", "task 3 is already completed",
            #"{"message":"task 3 is already completed","exception":"ConflictException"}"#),
        row("id space exhausted, tasks", .idSpaceExhausted(.task, serviceID: 7), 409, "IdSpaceExhaustedException",
            "service 7 has used every task id up to 2147483647",
            #"{"message":"service 7 has used every task id up to 2147483647","exception":"IdSpaceExhaustedException"}"#),
        row("id space exhausted, states", .idSpaceExhausted(.state, serviceID: 9223372036854775807), 409, "IdSpaceExhaustedException",
            "service 9223372036854775807 has used every state id up to 2147483647",
            #"{"message":"service 9223372036854775807 has used every state id up to 2147483647","exception":"IdSpaceExhaustedException"}"#),
        row("payload too large", .payloadTooLarge(limit: 1_048_576), 413, "PayloadTooLargeException", "body larger than 1048576 bytes",
            #"{"message":"body larger than 1048576 bytes","exception":"PayloadTooLargeException"}"#),
        row("unsupported media type", .unsupportedMediaType("text/plain; charset=\"utf-8\""), 415, "UnsupportedMediaTypeException",
            "a body must be application/json; got text/plain; charset=\"utf-8\"",
            #"{"message":"a body must be application/json; got text/plain; charset=\"utf-8\"","exception":"UnsupportedMediaTypeException"}"#),
        row("unsupported media type, none", .unsupportedMediaType(nil), 415, "UnsupportedMediaTypeException",
            "a body must be application/json; no Content-Type",
            #"{"message":"a body must be application/json; no Content-Type","exception":"UnsupportedMediaTypeException"}"#),
        row("overloaded, default 503", .overloaded("busy, retry later"), 503, "OverloadedException", "busy, retry later",
            #"{"message":"busy, retry later","exception":"OverloadedException"}"#),
        row("overloaded, 429", .overloaded(status: 429, "too many requests"), 429, "OverloadedException", "too many requests",
            #"{"message":"too many requests","exception":"OverloadedException"}"#),
        row("internal error", .internalError("unexpected state"), 500, "InternalException", "unexpected state",
            #"{"message":"unexpected state","exception":"InternalException"}"#),
        // Escaping: quotes, backslashes and control characters escaped; '/', DEL and non-ASCII raw.
        row("quotes and control characters are escaped", .validation("say \"hi\"\n\tback\\slash \u{1}\u{1F}\u{8}\u{C}\r"),
            400, "ValidationException", "say \"hi\"\n\tback\\slash \u{1}\u{1F}\u{8}\u{C}\r",
            #"{"message":"say \"hi\"\n\tback\\slash \u0001\u001f\b\f\r","exception":"ValidationException"}"#),
        row("slash, DEL and non-ASCII stay raw", .conflict("a/b \u{7F} é 😀 \u{2028}"), 409, "ConflictException",
            "a/b \u{7F} é 😀 \u{2028}",
            "{\"message\":\"a/b \u{7F} é 😀 \u{2028}\",\"exception\":\"ConflictException\"}"),
        row("an empty message", .internalError(""), 500, "InternalException", "",
            #"{"message":"","exception":"InternalException"}"#),
        row("a NUL in the message", .validation("a\u{0}b"), 400, "ValidationException", "a\u{0}b",
            #"{"message":"a\u0000b","exception":"ValidationException"}"#),
    ]
}

@Suite("Context errors")
struct ContextErrorTests {
    @Test("each error of §5: status, exception, message and exact body", arguments: ErrorFixtures.table)
    func shape(_ row: ErrorCase) throws {
        #expect(row.error.status == row.status)
        #expect(row.error.exception == row.exception)
        #expect(row.error.message == row.message)
        #expect(Array(row.error.message.utf8) == Array(row.message.utf8))
        #expect(String(decoding: row.error.jsonBody, as: UTF8.self) == row.body)
        #expect(row.error.jsonBody == Array(row.body.utf8))
        // The body is one valid object with exactly the two members, in that order, and the
        // message decodes back to the original text.
        let members = try StrictJSON.readObject(row.error.jsonBody)
        #expect(members.map(\.key) == ["message", "exception"])
        #expect(members.first?.value == .string(row.message))
        #expect(members.last?.value == .string(row.exception))
        // Never more than one line.
        #expect(!row.error.jsonBody.contains(0x0A))
        #expect(!row.error.jsonBody.contains(0x0D))
    }

    @Test("description is status, exception and message")
    func description() {
        #expect(ContextError.notFound(.service, 21456878).description == "404 NotFoundException: There are no service found for : 21456878")
        #expect("\(ContextError.payloadTooLarge(limit: 10))" == "413 PayloadTooLargeException: body larger than 10 bytes")
    }

    @Test("reader failures map to 413 for size and 400 for everything else", arguments: [
        (JSONReadError.tooLarge(limit: 16), ContextError(status: 413, exception: "PayloadTooLargeException", message: "body larger than 16 bytes")),
        (.tooDeep(limit: 64), .validation("JSON nesting deeper than 64")),
        (.duplicateKey("a\"b"), .validation(#"duplicate key "a\"b""#)),
        (.notAnObject, .validation("JSON body must be an object")),
        (.malformed(offset: 7, reason: "expected ':'"), .validation("malformed JSON at byte 7: expected ':'")),
    ])
    func fromReader(_ error: JSONReadError, _ expected: ContextError) {
        #expect(ContextError(error) == expected)
    }

    @Test("errors compare by status, exception and message")
    func equality() {
        #expect(ContextError.validation("x") == ContextError(status: 400, exception: "ValidationException", message: "x"))
        #expect(ContextError.validation("x") != .validation("y"))
        #expect(ContextError.overloaded("x") != .overloaded(status: 429, "x"))
        #expect(ContextError.conflict("x") != .idSpaceExhausted(.task, serviceID: 1))
    }
}
