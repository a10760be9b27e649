import Testing
@testable import ContextModel

@Suite("Batch wire format")
struct BatchCodecTests {
    static let items: [BatchItem] = [
        BatchItem(method: .post, target: "/services/7/tasks/start", body: Array(#"{"task_type":"customer info"}"#.utf8)),
        BatchItem(method: .get, target: "/services/7/tasks?task_types=a,b&state_id=2", tenant: "tenant-a"),
        BatchItem(method: .delete, target: "/services/7", tenant: "t", authorization: "Bearer s3cret"),
        BatchItem(method: .post, target: "/services/7/tasks/1/end", body: Array(#"{"note":"café ☕"}"#.utf8)),
        BatchItem(method: .post, target: "", tenant: String(repeating: "x", count: 256),
                  authorization: String(repeating: "a", count: 65535), body: [UInt8](repeating: 0x20, count: 70000)),
    ]

    static let results: [BatchResult] = [
        BatchResult(status: 201, location: "/genesys/1/cs/service/7/tasks/1", body: Array(#"{"task_id":1}"#.utf8)),
        BatchResult(status: 204),
        BatchResult(status: 200),
        BatchResult(status: 503, retryAfter: 1, body: ContextError.overloaded("busy").jsonBody),
        BatchResult(status: 404, body: ContextError.notFound(.service, 7).jsonBody),
        BatchResult(status: 200, location: "https://cs.example.com/genesys/1/cs/services/1", retryAfter: 65535,
                    body: [UInt8](repeating: 0x7B, count: 100_000)),
    ]

    @Test("Requests round-trip, one item and many")
    func requestRoundTrip() throws {
        for n in 1...Self.items.count {
            let items = Array(Self.items.prefix(n))
            let bytes = try BatchCodec.encodeRequest(items)
            #expect(try BatchCodec.decodeRequest(bytes) == items)
            #expect(try BatchCodec.decodeRequest(bytes, maxItems: n) == items)
        }
    }

    @Test("Responses round-trip, one result and many")
    func responseRoundTrip() throws {
        for n in 1...Self.results.count {
            let results = Array(Self.results.prefix(n))
            #expect(try BatchCodec.decodeResponse(try BatchCodec.encodeResponse(results)) == results)
        }
    }

    @Test("The bytes are the documented layout, big-endian (version 2: keys and replays)")
    func layout() throws {
        let item = BatchItem(method: .post, target: "/services/7/tasks/start", tenant: "t1", body: Array("{}".utf8),
                             idempotencyKey: "k-1", keyMadeByGateway: true)
        let bytes = try BatchCodec.encodeRequest([item])
        let expected: [UInt8] = Array("CSB2".utf8) + [0, 0, 0, 1] + [2]
            + [0, 23] + Array("/services/7/tasks/start".utf8)
            + [0, 2] + Array("t1".utf8)
            + [0, 0]
            + [0, 3] + Array("k-1".utf8) + [1]
            + [0, 0, 0, 2] + Array("{}".utf8)
        #expect(bytes == expected)
        #expect(try BatchCodec.decodeRequest(bytes) == [item])

        let result = BatchResult(status: 201, location: "/x", retryAfter: nil, body: Array("{}".utf8), replayed: true)
        let response = try BatchCodec.encodeResponse([result, BatchResult(status: 503, retryAfter: 258)])
        #expect(response == Array("CSR2".utf8) + [0, 0, 0, 2]
                + [0, 201, 0, 2] + Array("/x".utf8) + [0, 0] + [1] + [0, 0, 0, 2] + Array("{}".utf8)
                + [1, 247, 0, 0, 1, 2] + [0] + [0, 0, 0, 0])
        #expect(try BatchCodec.decodeResponse(response) == [result, BatchResult(status: 503, retryAfter: 258)])
    }

    @Test("Version 1 (no keys, no flags) is still read, and answered in version 1")
    func versionOne() throws {
        let v1: [UInt8] = Array("CSB1".utf8) + [0, 0, 0, 1] + [2]
            + [0, 23] + Array("/services/7/tasks/start".utf8)
            + [0, 2] + Array("t1".utf8)
            + [0, 0]
            + [0, 0, 0, 2] + Array("{}".utf8)
        let decoded = try BatchCodec.decodeRequestVersioned(v1)
        #expect(decoded.version == 1)
        #expect(decoded.items == [BatchItem(method: .post, target: "/services/7/tasks/start", tenant: "t1", body: Array("{}".utf8))])
        let result = BatchResult(status: 201, location: "/x", retryAfter: nil, body: Array("{}".utf8))
        let response = try BatchCodec.encodeResponse([result, BatchResult(status: 503, retryAfter: 258)], version: 1)
        #expect(response == Array("CSR1".utf8) + [0, 0, 0, 2]
                + [0, 201, 0, 2] + Array("/x".utf8) + [0, 0, 0, 0, 0, 2] + Array("{}".utf8)
                + [1, 247, 0, 0, 1, 2, 0, 0, 0, 0])
        #expect(try BatchCodec.decodeResponse(response) == [result, BatchResult(status: 503, retryAfter: 258)])
    }

    @Test("Empty tenant and auth are none; built item by item equals built at once")
    func emptyIsNone() throws {
        var bytes: [UInt8] = []
        try BatchCodec.appendRequestHeader(count: 2, to: &bytes)
        try BatchCodec.appendItem(BatchItem(method: .get, target: "/services/1", tenant: "", authorization: ""), to: &bytes)
        try BatchCodec.appendItem(BatchItem(.startTask(serviceID: 1), tenant: "a", body: Array("{}".utf8)), to: &bytes)
        let decoded = try BatchCodec.decodeRequest(bytes)
        #expect(decoded[0] == BatchItem(method: .get, target: "/services/1"))
        #expect(decoded[1] == BatchItem(method: .post, target: "/services/1/tasks/start", tenant: "a", body: Array("{}".utf8)))
        #expect(bytes == (try BatchCodec.encodeRequest(decoded)))
    }

    @Test("An item from a route carries the route's method and its target relative to the base",
          arguments: RESTRouteTargetTests.routes)
    func itemFromRoute(route: RESTRoute) {
        let item = BatchItem(route)
        #expect(item.method.name == route.method)
        #expect(RESTRoute.parse(method: item.method.name, target: RESTRoute.defaultBasePath + item.target) == .success(route))
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var error: BatchCodecError
        var testDescription: String { name }
    }

    static let good = try! BatchCodec.encodeRequest([BatchItem(method: .post, target: "/services/1/tasks/start", tenant: "t",
                                                               authorization: "a", body: Array("{}".utf8))])
    static func item(method: UInt8 = 2, target: [UInt8] = Array("/s".utf8), tenant: [UInt8] = [], auth: [UInt8] = [],
                     body: [UInt8] = []) -> [UInt8] {
        [method] + u16(target.count) + target + u16(tenant.count) + tenant + u16(auth.count) + auth + u32(body.count) + body
    }
    static func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    static func u32(_ n: Int) -> [UInt8] { [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    static let magic = Array("CSB1".utf8)

    static let malformedRequests: [Malformed] = [
        Malformed(name: "no bytes", bytes: [], error: .badMagic),
        Malformed(name: "short magic", bytes: Array("CSB".utf8), error: .badMagic),
        Malformed(name: "wrong magic", bytes: Array("CSB3".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "a response's magic", bytes: Array("CSR1".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "lowercase magic", bytes: Array("csb1".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "magic only", bytes: magic, error: .truncated(offset: 4, needed: "count")),
        Malformed(name: "half a count", bytes: magic + [0, 0], error: .truncated(offset: 4, needed: "count")),
        Malformed(name: "count 0", bytes: magic + u32(0), error: .emptyBatch),
        Malformed(name: "count 0 with an item", bytes: magic + u32(0) + item(), error: .emptyBatch),
        Malformed(name: "count 1, no item", bytes: magic + u32(1), error: .truncated(offset: 8, needed: "1 items")),
        Malformed(name: "count 2, one item", bytes: magic + u32(2) + item(body: Array("{}{}{}{}{}{}".utf8)),
                  error: .truncated(offset: 33, needed: "method of item 1")),
        Malformed(name: "count 2^32-1", bytes: magic + [255, 255, 255, 255] + item(),
                  error: .truncated(offset: 21, needed: "4294967295 items")),
        Malformed(name: "method 0", bytes: magic + u32(1) + item(method: 0), error: .unknownMethod(0, item: 0, offset: 8)),
        Malformed(name: "method 4", bytes: magic + u32(1) + item(method: 4), error: .unknownMethod(4, item: 0, offset: 8)),
        Malformed(name: "method 'P'", bytes: magic + u32(2) + item() + item(method: 0x50),
                  error: .unknownMethod(0x50, item: 1, offset: 21)),
        Malformed(name: "target length past the end", bytes: magic + u32(1) + [2] + u16(200) + Array("/s".utf8) + [0, 0, 0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 11, needed: "target of item 0")),
        Malformed(name: "tenant length past the end", bytes: magic + u32(1) + [2] + u16(2) + Array("/s".utf8) + u16(99) + [0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 15, needed: "tenant of item 0")),
        Malformed(name: "auth length past the end", bytes: magic + u32(1) + [2] + u16(0) + u16(0) + u16(7) + [0, 0, 0, 0, 1],
                  error: .truncated(offset: 15, needed: "auth of item 0")),
        Malformed(name: "body length past the end", bytes: magic + u32(1) + item(body: Array("{}".utf8)).dropLast(),
                  error: .truncated(offset: 21, needed: "body of item 0")),
        Malformed(name: "body length 2^32-1", bytes: magic + u32(1) + item().dropLast(4) + [255, 255, 255, 255] + Array("{}".utf8),
                  error: .truncated(offset: 21, needed: "body of item 0")),
        Malformed(name: "cut inside the body length", bytes: magic + u32(1) + [2, 0, 2] + Array("/s".utf8) + [0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 17, needed: "body of item 0")),
        Malformed(name: "a byte after the last item", bytes: magic + u32(1) + item() + [0],
                  error: .trailingBytes(offset: 21, count: 1)),
        Malformed(name: "an extra item", bytes: magic + u32(1) + item() + item(),
                  error: .trailingBytes(offset: 21, count: 13)),
        Malformed(name: "a good batch without its last byte", bytes: Array(good.dropLast()),
                  error: .truncated(offset: 47, needed: "body of item 0")),
    ]

    @Test("Malformed requests are refused with a precise error that the core answers with 400",
          arguments: malformedRequests)
    func malformedRequest(c: Malformed) {
        #expect(throws: c.error) { try BatchCodec.decodeRequest(c.bytes) }
        #expect(c.error.contextError.status == 400)
        #expect(c.error.contextError.exception == "ValidationException")
        #expect(c.error.description.hasPrefix("malformed batch"))
    }

    @Test("Every strict prefix of a valid request is refused, never read past its end")
    func everyPrefix() throws {
        let bytes = try BatchCodec.encodeRequest(Array(Self.items.prefix(4)))
        for n in 0..<bytes.count {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeRequest(Array(bytes.prefix(n))) }
        }
        let response = try BatchCodec.encodeResponse(Array(Self.results.prefix(5)))
        for n in 0..<response.count {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeResponse(Array(response.prefix(n))) }
        }
    }

    @Test("More items than the receiver takes: refused from the header, a 413")
    func tooManyItems() throws {
        let bytes = try BatchCodec.encodeRequest(Array(repeating: BatchItem(method: .get, target: "/services/1"), count: 3))
        #expect(throws: BatchCodecError.tooManyItems(count: 3, limit: 2)) { try BatchCodec.decodeRequest(bytes, maxItems: 2) }
        // Refused from the header alone: the rest need not even be there.
        #expect(throws: BatchCodecError.tooManyItems(count: 3, limit: 2)) {
            try BatchCodec.decodeRequest(Array(bytes.prefix(8)), maxItems: 2)
        }
        let error = BatchCodecError.tooManyItems(count: 3, limit: 2).contextError
        #expect(error.status == 413)
        #expect(error.exception == "PayloadTooLargeException")
        #expect(try BatchCodec.decodeRequest(bytes, maxItems: 3).count == 3)
    }

    static let malformedResponses: [Malformed] = [
        Malformed(name: "no bytes", bytes: [], error: .badMagic),
        Malformed(name: "a request's magic", bytes: Array("CSB1".utf8) + u32(1) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0], error: .badMagic),
        Malformed(name: "count 0", bytes: Array("CSR1".utf8) + u32(0), error: .emptyBatch),
        Malformed(name: "count 2, one result", bytes: Array("CSR1".utf8) + u32(2) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 18, needed: "2 results")),
        Malformed(name: "location past the end", bytes: Array("CSR1".utf8) + u32(1) + [0, 201, 0, 9, 0x2F, 0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 12, needed: "location of result 0")),
        Malformed(name: "body past the end", bytes: Array("CSR1".utf8) + u32(1) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 3, 0x7B, 0x7D],
                  error: .truncated(offset: 18, needed: "body of result 0")),
        Malformed(name: "trailing bytes", bytes: Array("CSR1".utf8) + u32(1) + [0, 204, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                  error: .trailingBytes(offset: 18, count: 1)),
    ]

    @Test("Malformed responses are refused", arguments: malformedResponses)
    func malformedResponse(c: Malformed) {
        #expect(throws: c.error) { try BatchCodec.decodeResponse(c.bytes) }
    }

    @Test("Encoding refuses what its fields cannot hold")
    func encodeLimits() {
        #expect(throws: BatchCodecError.emptyBatch) { try BatchCodec.encodeRequest([]) }
        #expect(throws: BatchCodecError.emptyBatch) { try BatchCodec.encodeResponse([]) }
        #expect(throws: BatchCodecError.fieldTooLong(field: "target", length: 65536)) {
            try BatchCodec.encodeRequest([BatchItem(method: .get, target: String(repeating: "a", count: 65536))])
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "tenant", length: 65536)) {
            try BatchCodec.encodeRequest([BatchItem(method: .get, target: "/", tenant: String(repeating: "a", count: 65536))])
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "location", length: 65536)) {
            try BatchCodec.encodeResponse([BatchResult(status: 201, location: String(repeating: "a", count: 65536))])
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "status", length: 70000)) {
            try BatchCodec.encodeResponse([BatchResult(status: 70000)])
        }
    }

    @Test("Invalid UTF-8 in a text field is not a framing error: it fails the item's own checks")
    func invalidUTF8() throws {
        let bytes = Self.magic + Self.u32(1) + Self.item(method: 1, target: [0x2F, 0xFF], tenant: [0xC3])
        let items = try BatchCodec.decodeRequest(bytes)
        #expect(items[0].target == "/\u{FFFD}")
        #expect(items[0].tenant == "\u{FFFD}")
    }

    @Test("Batch-level errors have the contract's shape")
    func errors() {
        let tooLarge = ContextError.batchTooLarge(limit: 16)
        #expect(tooLarge.status == 413)
        #expect(tooLarge.exception == "PayloadTooLargeException")
        let media = ContextError.batchUnsupportedMediaType("application/json")
        #expect(media.status == 415)
        #expect(media.exception == "UnsupportedMediaTypeException")
        #expect(media.message == "a batch must be application/x-cs-batch; got application/json")
        #expect(ContextError.batchUnsupportedMediaType(nil).message.hasSuffix("no Content-Type"))
    }
}

@Suite("Batch wire format: traces (README, \"Tracing\")")
struct BatchCodecTraceTests {
    static let trace = TraceParent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")!

    @Test("An item's trace round-trips, with and without a key, beside items without one")
    func roundTrip() throws {
        let items = [
            BatchItem(method: .post, target: "/services/7/tasks/start", tenant: "t", body: Array("{}".utf8), trace: Self.trace),
            BatchItem(method: .get, target: "/services/7"),
            BatchItem(method: .post, target: "/services/start", body: Array("{}".utf8), idempotencyKey: "k",
                      keyMadeByGateway: true, keyIsFresh: true, trace: Self.trace),
        ]
        let bytes = try BatchCodec.encodeRequest(items)
        #expect(try BatchCodec.decodeRequest(bytes) == items)
        var built: [UInt8] = []
        try BatchCodec.appendRequestHeader(count: items.count, to: &built)
        for item in items { try BatchCodec.appendItem(item, to: &built) }
        #expect(built == bytes)
    }

    @Test("The trace is bit 2 of the key flags, then trace id, parent id and flags, before the body")
    func layout() throws {
        let item = BatchItem(method: .post, target: "/s", body: Array("{}".utf8), trace: Self.trace)
        let bytes = try BatchCodec.encodeRequest([item])
        let expected: [UInt8] = Array("CSB2".utf8) + [0, 0, 0, 1] + [2]
            + [0, 2] + Array("/s".utf8) + [0, 0] + [0, 0] + [0, 0] + [4]
            + [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]
            + [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7] + [1]
            + [0, 0, 0, 2] + Array("{}".utf8)
        #expect(bytes == expected)
    }

    @Test("Bytes of a gateway from before traces (version 2, no bit 2) still decode, to items without a trace")
    func olderVersion2() throws {
        // Exactly what the encoder wrote before this field existed (BatchCodecTests.layout).
        let old: [UInt8] = Array("CSB2".utf8) + [0, 0, 0, 1] + [2]
            + [0, 23] + Array("/services/7/tasks/start".utf8) + [0, 2] + Array("t1".utf8) + [0, 0]
            + [0, 3] + Array("k-1".utf8) + [1] + [0, 0, 0, 2] + Array("{}".utf8)
        let items = try BatchCodec.decodeRequest(old)
        #expect(items == [BatchItem(method: .post, target: "/services/7/tasks/start", tenant: "t1", body: Array("{}".utf8),
                                    idempotencyKey: "k-1", keyMadeByGateway: true)])
        #expect(items[0].trace == nil)
        let v1: [UInt8] = Array("CSB1".utf8) + [0, 0, 0, 1] + [1] + [0, 2] + Array("/s".utf8) + [0, 0] + [0, 0] + [0, 0, 0, 0]
        #expect(try BatchCodec.decodeRequestVersioned(v1).items == [BatchItem(method: .get, target: "/s")])
    }

    @Test("A trace cut short is a framing error; zero ids are read as no trace")
    func malformed() throws {
        let bytes = try BatchCodec.encodeRequest([BatchItem(method: .get, target: "/s", trace: Self.trace)])
        for cut in 1...29 {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeRequest(Array(bytes.dropLast(cut))) }
        }
        var zero = bytes
        for i in 20..<44 { zero[i] = 0 }  // trace id and parent id (after 8 + 12 bytes)
        #expect(try BatchCodec.decodeRequest(zero)[0].trace == nil)
    }
}
