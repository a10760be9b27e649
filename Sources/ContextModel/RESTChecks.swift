public import NIOCore

/// The checks of a REST request that come before the store, in the order the core makes them
/// (route first, then these): credentials, tenant, content type, body. The core and the
/// gateway's REST side both call these, so a request refused by one is refused by the other
/// with the same status and message.
public enum RESTChecks {
    /// §5: with tokens configured, `Authorization: Bearer <token>` must name one of them.
    /// No tokens: no check.
    public static func authorize(_ header: String?, tokens: [String]) throws(ContextError) {
        guard !tokens.isEmpty else { return }
        guard let header else { throw .unauthorized("an Authorization: Bearer header is required") }
        guard header.count > 7, header.prefix(7).lowercased() == "bearer " else {
            throw .unauthorized("the Authorization header must be a Bearer token")
        }
        let token = Array(header.utf8.dropFirst(7))
        // Compare against every token in constant time per token, so timing says nothing
        // about which prefix matched.
        var matched = false
        for candidate in tokens {
            matched = constantTimeEqual(Array(candidate.utf8), token) || matched
        }
        guard matched else { throw .unauthorized("the credentials are not valid") }
    }

    /// The contract's headers that must come at most once: a request naming its tenant (or
    /// its credentials) twice is ambiguous, and transports disagree on which copy wins
    /// (nghttp2 hands over every copy, NIO's `first(name:)` keeps the first), so it is
    /// refused rather than resolved. Names as the contract spells them.
    public static let singleHeaders = ["ContactCenterId", "Authorization", "Idempotency-Key"]

    /// The longest `Idempotency-Key` accepted, in bytes (README, "Exactly once"): room for any
    /// UUID, ULID or hash a client makes, small enough to index.
    public static let maxIdempotencyKeyBytes = 255

    /// The `Idempotency-Key` of a write (IETF httpapi "The Idempotency-Key HTTP Header Field"):
    /// an RFC 8941 sf-string (`"…"`, with `\"` and `\\` escapes), or, as many clients send
    /// it, the bare text. 1 to 255 bytes of printable ASCII once unquoted; nil when absent.
    public static func idempotencyKey(_ header: String?) throws(ContextError) -> String? {
        guard let header else { return nil }
        var bytes = Array(header.utf8)
        if bytes.first == UInt8(ascii: "\"") {
            guard bytes.count >= 2, bytes.last == UInt8(ascii: "\"") else {
                throw .validation("Idempotency-Key: a quoted key must end with a quote")
            }
            var out: [UInt8] = []
            var i = 1
            while i < bytes.count - 1 {
                var b = bytes[i]
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard i < bytes.count - 1, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "\\") else {
                        throw .validation("Idempotency-Key: a quoted key may escape only \" and \\")
                    }
                    b = bytes[i]
                } else if b == UInt8(ascii: "\"") {
                    throw .validation("Idempotency-Key: an unescaped quote inside the key")
                }
                out.append(b)
                i += 1
            }
            bytes = out
        } else if bytes.contains(UInt8(ascii: "\"")) {
            throw .validation("Idempotency-Key: a quote inside a key that is not quoted")
        }
        guard (1...maxIdempotencyKeyBytes).contains(bytes.count), bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw .validation("Idempotency-Key must be 1 to \(maxIdempotencyKeyBytes) printable ASCII characters")
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// 400 when `repeated` names a header of `singleHeaders` that came more than once.
    public static func notRepeated(_ repeated: String?) throws(ContextError) {
        guard let repeated else { return }
        throw .validation("the \(repeated) header must be given at most once")
    }

    /// The tenant of §6: no header is the default tenant ("").
    public static func tenant(_ header: String?) throws(ContextError) -> String {
        guard let header, !header.isEmpty else { return "" }
        guard header.utf8.count <= 256, header.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw .validation("ContactCenterId must be 1 to 256 visible ASCII characters")
        }
        return header
    }

    /// The media type of a `Content-Type` value, lower-cased, without its parameters:
    /// `Application/JSON; charset=utf-8` → `application/json`.
    public static func mediaType(_ value: String?) -> String? {
        guard let value else { return nil }
        return value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingBlanks.lowercased()
    }

    /// §5: a body must be `application/json` (parameters allowed; a charset must be UTF-8).
    public static func checkContentType(_ value: String?) throws(ContextError) {
        guard let value else { throw .unsupportedMediaType(nil) }
        let parts = value.split(separator: ";").map { $0.trimmingBlanks.lowercased() }
        guard parts.first == "application/json" else { throw .unsupportedMediaType(value) }
        for parameter in parts.dropFirst() where parameter.hasPrefix("charset=") {
            let charset = parameter.dropFirst("charset=".count).filter { $0 != "\"" }
            guard charset == "utf-8" || charset == "utf8" else { throw .unsupportedMediaType(value) }
        }
    }

    /// The validated event of a write route's body; nil for routes that take none (reads,
    /// Delete Service). No body at all is an event with no fields (decided): `curl -X POST
    /// …/end` works.
    public static func event(
        for route: RESTRoute, body: ByteBuffer, contentType: String?, limits: JSONLimits
    ) throws(ContextError) -> Event? {
        let kind: ResourceKind, phase: EventPhase
        switch route {
        case .startService: (kind, phase) = (.service, .start)
        case .endService: (kind, phase) = (.service, .end)
        case .startState: (kind, phase) = (.state, .start)
        case .endState: (kind, phase) = (.state, .end)
        case .startTask: (kind, phase) = (.task, .start)
        case .endTask: (kind, phase) = (.task, .end)
        case .deleteService, .queryService, .queryState, .queryTask, .queryTasks: return nil
        }
        if body.readableBytes == 0 { return Event(kind: kind, phase: phase) }
        try checkContentType(contentType)
        return try Event.parse(body, kind: kind, phase: phase, limits: limits)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    public var trimmingBlanks: Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
}
