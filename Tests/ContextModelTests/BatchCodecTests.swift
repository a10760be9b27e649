import Testing
@testable import ContextModel

@Suite("Batch wire format")
struct BatchCodecTests {
    static let items: [BatchItem] = [
        BatchItem(.startTask(serviceID: 7), body: Array(#"{"task_type":"customer info"}"#.utf8)),
        BatchItem(.queryTasks(serviceID: 7, filter: filter(types: ["a", "b"], state: 2)), tenant: "tenant-a"),
        BatchItem(.deleteService(serviceID: 7), tenant: "t", authorization: "Bearer s3cret"),
        BatchItem(.endTask(serviceID: 7, taskID: 1), body: Array(#"{"note":"café ☕"}"#.utf8), idempotencyKey: "k-1"),
        BatchItem(.startService, tenant: String(repeating: "x", count: 256),
                  authorization: String(repeating: "a", count: 65535), body: [UInt8](repeating: 0x20, count: 70000),
                  idempotencyKey: String(repeating: "k", count: 255), keyMadeByGateway: true, keyIsFresh: true),
    ]

    static func filter(_ status: TaskFilter.Status = .all, types: [String] = [], state: Int64? = nil) -> TaskFilter {
        var filter = TaskFilter()
        filter.status = status
        filter.taskTypes = types
        filter.stateID = state
        return filter
    }

    static let results: [BatchResult] = [
        BatchResult(status: 201, location: "/genesys/1/cs/service/7/tasks/1", body: Array(#"{"task_id":1}"#.utf8)),
        BatchResult(status: 204),
        BatchResult(status: 200),
        BatchResult(status: 503, retryAfter: 1, body: ContextError.overloaded("busy").jsonBody),
        BatchResult(status: 404, body: ContextError.notFound(.service, 7).jsonBody, replayed: true),
        BatchResult(status: 200, location: "https://cs.example.com/genesys/1/cs/services/1", retryAfter: 65535,
                    body: [UInt8](repeating: 0x7B, count: 100_000)),
    ]

    static func decoded(_ bytes: [UInt8], maxItems: Int = Int.max) throws -> [BatchItem?] {
        try BatchCodec.decodeRequest(bytes, maxItems: maxItems).map(\.item)
    }

    @Test("Requests round-trip, one item and many")
    func requestRoundTrip() throws {
        for n in 1...Self.items.count {
            let items = Array(Self.items.prefix(n))
            let bytes = try BatchCodec.encodeRequest(items)
            #expect(try Self.decoded(bytes) == items)
            #expect(try Self.decoded(bytes, maxItems: n) == items)
        }
    }

    @Test("Every route of the contract round-trips typed: operation, ids, include flags, filters",
          arguments: RESTRouteTargetTests.routes)
    func routeRoundTrip(route: RESTRoute) throws {
        let item = BatchItem(route, tenant: "t", body: route.takesBody ? Array("{}".utf8) : [])
        let decoded = try BatchCodec.decodeRequest(try BatchCodec.encodeRequest([item]))
        #expect(decoded.count == 1)
        #expect(decoded[0].route == .success(route))
        #expect(decoded[0].item == item)
        // The same route REST would parse from the route's own path: nothing is lost.
        #expect(RESTRoute.parse(method: route.method, target: route.target()) == .success(try decoded[0].route.get()))
    }

    @Test("Operations are numbered in the order of §2")
    func operationNumbers() {
        #expect(RESTOperation.allCases.map(\.rawValue) == Array(1...11))
        #expect(RESTOperation.allCases.map(\.name) == RESTRoute.operationNames)
        for route in RESTRouteTargetTests.routes {
            #expect(route.operation.name == route.operationName)
        }
    }

    @Test("Responses round-trip, one result and many")
    func responseRoundTrip() throws {
        for n in 1...Self.results.count {
            let results = Array(Self.results.prefix(n))
            #expect(try BatchCodec.decodeResponse(try BatchCodec.encodeResponse(results)) == results)
        }
    }

    @Test("The bytes are the documented layout, big-endian (version 3: typed operations)")
    func layout() throws {
        let item = BatchItem(.startTask(serviceID: 7), tenant: "t1", body: Array("{}".utf8),
                             idempotencyKey: "k-1", keyMadeByGateway: true)
        let bytes = try BatchCodec.encodeRequest([item])
        let expected: [UInt8] = Array("CSB3".utf8) + [0, 0, 0, 1]
            + [8] + [0, 0, 0, 0, 0, 0, 0, 7] + [0, 0, 0, 0] + [0, 0]
            + [0, 2] + Array("t1".utf8)
            + [0, 0]
            + [0, 3] + Array("k-1".utf8) + [1]
            + [0, 0, 0, 2] + Array("{}".utf8)
        #expect(bytes == expected)
        #expect(try Self.decoded(bytes) == [item])

        let query = BatchItem(.queryTasks(serviceID: 1, filter: Self.filter(.active, types: ["a", "bc"], state: 3)))
        #expect(try BatchCodec.encodeRequest([query]) == Array("CSB3".utf8) + [0, 0, 0, 1]
                + [11] + [0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0, 0] + [0, 12]
                + [1] + [0, 0, 0, 3] + [0, 1] + Array("a".utf8) + [0, 2] + Array("bc".utf8)
                + [0, 0] + [0, 0] + [0, 0] + [0] + [0, 0, 0, 0])
        var include = ServiceInclude()
        include.completedStates = true
        include.completedTasks = true
        #expect(try BatchCodec.encodeRequest([BatchItem(.queryService(serviceID: 2, include: include))])
                == Array("CSB3".utf8) + [0, 0, 0, 1] + [3] + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 0] + [0, 1] + [10]
                + [0, 0] + [0, 0] + [0, 0] + [0] + [0, 0, 0, 0])
        var stateInclude = StateInclude()
        stateInclude.completedTasks = true
        #expect(try BatchCodec.encodeRequest([BatchItem(.queryState(serviceID: 2, stateID: 5, include: stateInclude))])
                == Array("CSB3".utf8) + [0, 0, 0, 1] + [7] + [0, 0, 0, 0, 0, 0, 0, 2] + [0, 0, 0, 5] + [0, 1] + [2]
                + [0, 0] + [0, 0] + [0, 0] + [0] + [0, 0, 0, 0])

        let result = BatchResult(status: 201, location: "/x", retryAfter: nil, body: Array("{}".utf8), replayed: true)
        let response = Array(try BatchCodec.encodeResponse([result, BatchResult(status: 503, retryAfter: 258)]).readableBytesView)
        var expectedResponse: [UInt8] = Array("CSR3".utf8)
        expectedResponse += [0, 0, 0, 2, 0, 201, 0, 2] as [UInt8]
        expectedResponse += Array("/x".utf8)
        expectedResponse += [0, 0, 1, 0, 0, 0, 2] as [UInt8]
        expectedResponse += Array("{}".utf8)
        expectedResponse += [1, 247, 0, 0, 1, 2, 0, 0, 0, 0, 0] as [UInt8]
        #expect(response == expectedResponse)
        #expect(try BatchCodec.decodeResponse(response) == [result, BatchResult(status: 503, retryAfter: 258)])
    }

    @Test("Empty tenant, auth and key are none; built item by item equals built at once")
    func emptyIsNone() throws {
        var bytes: [UInt8] = []
        try BatchCodec.appendRequestHeader(count: 2, to: &bytes)
        try BatchCodec.appendItem(BatchItem(.queryService(serviceID: 1, include: ServiceInclude()), tenant: "",
                                            authorization: "", idempotencyKey: ""), to: &bytes)
        try BatchCodec.appendItem(BatchItem(.startTask(serviceID: 1), tenant: "a", body: Array("{}".utf8)), to: &bytes)
        let decoded = try Self.decoded(bytes)
        #expect(decoded[0] == BatchItem(.queryService(serviceID: 1, include: ServiceInclude())))
        #expect(decoded[1] == BatchItem(.startTask(serviceID: 1), tenant: "a", body: Array("{}".utf8)))
        #expect(bytes == (try BatchCodec.encodeRequest(decoded.map { $0! })))
        #expect(bytes.count == BatchCodec.headerBytes + (try decoded.reduce(0) { $0 + (try BatchCodec.encodedSize(of: $1!)) }))
    }

    @Test("Empty task types are dropped, as REST's task_types=a,,b drops them")
    func emptyTaskTypes() throws {
        let item = BatchItem(.queryTasks(serviceID: 1, filter: Self.filter(types: ["", "a", ""])))
        let decoded = try BatchCodec.decodeRequest(try BatchCodec.encodeRequest([item]))
        #expect(decoded[0].route == .success(.queryTasks(serviceID: 1, filter: Self.filter(types: ["a"]))))
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1/tasks?task_types=,a,")
                == .success(.queryTasks(serviceID: 1, filter: Self.filter(types: ["a"]))))
    }

    // MARK: Raw bytes

    static func item(op: UInt8 = 8, sid: UInt64 = 1, cid: UInt32 = 0, params: [UInt8] = [], tenant: [UInt8] = [],
                     auth: [UInt8] = [], key: [UInt8] = [], flags: UInt8 = 0, body: [UInt8] = []) -> [UInt8] {
        [op] + u64(sid) + u32(Int(cid)) + u16(params.count) + params + u16(tenant.count) + tenant + u16(auth.count) + auth
            + u16(key.count) + key + [flags] + u32(body.count) + body
    }
    static func u16(_ n: Int) -> [UInt8] { [UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    static func u32(_ n: Int) -> [UInt8] { [UInt8(n >> 24 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] }
    static func u64(_ n: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: n >> (56 - 8 * UInt64($0))) } }
    static let magic = Array("CSB3".utf8)

    struct Malformed: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var error: BatchCodecError
        var testDescription: String { name }
    }

    static let good = try! BatchCodec.encodeRequest([BatchItem(.startTask(serviceID: 1), tenant: "t", authorization: "a",
                                                               body: Array("{}".utf8))])

    static let malformedRequests: [Malformed] = [
        Malformed(name: "no bytes", bytes: [], error: .badMagic),
        Malformed(name: "short magic", bytes: Array("CSB".utf8), error: .badMagic),
        Malformed(name: "version 2's magic", bytes: Array("CSB2".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "version 1's magic", bytes: Array("CSB1".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "a response's magic", bytes: Array("CSR3".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "lowercase magic", bytes: Array("csb3".utf8) + u32(1) + item(), error: .badMagic),
        Malformed(name: "magic only", bytes: magic, error: .truncated(offset: 4, needed: "count")),
        Malformed(name: "half a count", bytes: magic + [0, 0], error: .truncated(offset: 4, needed: "count")),
        Malformed(name: "count 0", bytes: magic + u32(0), error: .emptyBatch),
        Malformed(name: "count 0 with an item", bytes: magic + u32(0) + item(), error: .emptyBatch),
        Malformed(name: "count 1, no item", bytes: magic + u32(1), error: .truncated(offset: 8, needed: "1 items")),
        Malformed(name: "count 2, one item", bytes: magic + u32(2) + item(body: [UInt8](repeating: 0x20, count: 30)),
                  error: .truncated(offset: 64, needed: "operation of item 1")),
        Malformed(name: "count 2^32-1", bytes: magic + [255, 255, 255, 255] + item(),
                  error: .truncated(offset: 34, needed: "4294967295 items")),
        Malformed(name: "cut inside the second item's service id",
                  bytes: magic + u32(2) + item(body: [UInt8](repeating: 0x20, count: 26)) + [8, 0, 0, 0],
                  error: .truncated(offset: 61, needed: "service_id of item 1")),
        Malformed(name: "params length past the end",
                  bytes: magic + u32(1) + [8] + u64(1) + u32(0) + u16(200) + [UInt8](repeating: 0, count: 11),
                  error: .truncated(offset: 23, needed: "params of item 0")),
        Malformed(name: "tenant length past the end",
                  bytes: magic + u32(1) + [8] + u64(1) + u32(0) + u16(0) + u16(99) + [UInt8](repeating: 0, count: 9),
                  error: .truncated(offset: 25, needed: "tenant of item 0")),
        Malformed(name: "auth length past the end",
                  bytes: magic + u32(1) + [8] + u64(1) + u32(0) + u16(0) + u16(0) + u16(8) + [UInt8](repeating: 0, count: 7),
                  error: .truncated(offset: 27, needed: "auth of item 0")),
        Malformed(name: "key length past the end",
                  bytes: magic + u32(1) + [8] + u64(1) + u32(0) + u16(0) + u16(0) + u16(0) + u16(6) + [UInt8](repeating: 0, count: 5),
                  error: .truncated(offset: 29, needed: "key of item 0")),
        Malformed(name: "reserved flag bits", bytes: magic + u32(1) + item(flags: 8),
                  error: .unknownFlags(8, item: 0, offset: 29)),
        Malformed(name: "reserved flag bits of a second item", bytes: magic + u32(2) + item() + item(flags: 0x81),
                  error: .unknownFlags(0x81, item: 1, offset: 55)),
        Malformed(name: "body length past the end", bytes: magic + u32(1) + item(body: Array("{}".utf8)).dropLast(),
                  error: .truncated(offset: 34, needed: "body of item 0")),
        Malformed(name: "body length 2^32-1", bytes: magic + u32(1) + item().dropLast(4) + [255, 255, 255, 255] + Array("{}".utf8),
                  error: .truncated(offset: 34, needed: "body of item 0")),
        Malformed(name: "a trace cut short", bytes: magic + u32(1) + item(flags: 4) + [1, 2, 3],
                  error: .truncated(offset: 30, needed: "trace id of item 0")),
        Malformed(name: "a byte after the last item", bytes: magic + u32(1) + item() + [0],
                  error: .trailingBytes(offset: 34, count: 1)),
        Malformed(name: "an extra item", bytes: magic + u32(1) + item() + item(),
                  error: .trailingBytes(offset: 34, count: 26)),
        Malformed(name: "a good batch without its last byte", bytes: Array(good.dropLast()),
                  error: .truncated(offset: 36, needed: "body of item 0")),
    ]

    @Test("Malformed requests are refused whole with a precise error that the core answers with 400",
          arguments: malformedRequests)
    func malformedRequest(c: Malformed) {
        #expect(throws: c.error) { try BatchCodec.decodeRequest(c.bytes) }
        #expect(c.error.contextError.status == 400)
        #expect(c.error.contextError.exception == "ValidationException")
        #expect(c.error.description.hasPrefix("malformed batch"))
    }

    struct BadItem: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        /// The REST request that gets the same error, when there is one.
        var rest: (method: String, target: String)?
        var status: Int
        var testDescription: String { name }
    }

    static let badItems: [BadItem] = [
        BadItem(name: "operation 0", bytes: item(op: 0), rest: nil, status: 404),
        BadItem(name: "operation 12", bytes: item(op: 12), rest: nil, status: 404),
        BadItem(name: "operation 255", bytes: item(op: 255), rest: nil, status: 404),
        BadItem(name: "service id 0", bytes: item(op: 8, sid: 0), rest: ("POST", "/services/0/tasks/start"), status: 400),
        BadItem(name: "service id 2^63", bytes: item(op: 2, sid: 1 << 63), rest: ("POST", "/services/9223372036854775808/end"),
                status: 400),
        BadItem(name: "service id 2^64-1", bytes: item(op: 3, sid: UInt64.max, params: [0]),
                rest: ("GET", "/services/18446744073709551615"), status: 400),
        BadItem(name: "task id 0", bytes: item(op: 10, cid: 0), rest: ("GET", "/services/1/tasks/0"), status: 400),
        BadItem(name: "task id 2^31", bytes: item(op: 9, cid: 1 << 31), rest: ("POST", "/services/1/tasks/2147483648/end"),
                status: 400),
        BadItem(name: "state id 0", bytes: item(op: 7, cid: 0, params: [0]), rest: ("GET", "/services/1/states/0"), status: 400),
        BadItem(name: "state id 2^32-1", bytes: item(op: 6, cid: UInt32.max),
                rest: ("POST", "/services/1/states/4294967295/end"), status: 400),
        BadItem(name: "state_id filter 2^31", bytes: item(op: 11, params: [0] + u32(1 << 31)),
                rest: ("GET", "/services/1/tasks?state_id=2147483648"), status: 400),
        BadItem(name: "a service id for StartService", bytes: item(op: 1, sid: 5), rest: nil, status: 400),
        BadItem(name: "a child id for StartTask", bytes: item(op: 8, cid: 5), rest: nil, status: 400),
        BadItem(name: "QueryService without its flags", bytes: item(op: 3), rest: nil, status: 400),
        BadItem(name: "QueryService with two flag bytes", bytes: item(op: 3, params: [0, 0]), rest: nil, status: 400),
        BadItem(name: "QueryService with unknown flag bits", bytes: item(op: 3, params: [16]), rest: nil, status: 400),
        BadItem(name: "QueryState with unknown flag bits", bytes: item(op: 7, cid: 1, params: [4]), rest: nil, status: 400),
        BadItem(name: "StartTask with params", bytes: item(op: 8, params: [0]), rest: nil, status: 400),
        BadItem(name: "QueryTasks without params", bytes: item(op: 11), rest: nil, status: 400),
        BadItem(name: "QueryTasks with status 3", bytes: item(op: 11, params: [3, 0, 0, 0, 0]), rest: nil, status: 400),
        BadItem(name: "QueryTasks with a task type cut short", bytes: item(op: 11, params: [0, 0, 0, 0, 0, 0, 5, 0x61]),
                rest: nil, status: 400),
        BadItem(name: "QueryTasks with a task type not UTF-8", bytes: item(op: 11, params: [0, 0, 0, 0, 0, 0, 1, 0xFF]),
                rest: ("GET", "/services/1/tasks?task_types=%FF"), status: 400),
    ]

    @Test("A malformed item fails alone, with what the equivalent REST request gets", arguments: badItems)
    func badItem(c: BadItem) throws {
        let goodItem = BatchItem(.queryTask(serviceID: 1, taskID: 1))
        var bytes = Self.magic + Self.u32(3)
        try BatchCodec.appendItem(goodItem, to: &bytes)
        bytes += c.bytes
        try BatchCodec.appendItem(goodItem, to: &bytes)
        let decoded = try BatchCodec.decodeRequest(bytes)
        #expect(decoded.count == 3)
        #expect(decoded[0].item == goodItem)
        #expect(decoded[2].item == goodItem)
        guard case .failure(let error) = decoded[1].route else {
            Issue.record("item decoded to \(decoded[1].route)")
            return
        }
        #expect(error.status == c.status)
        #expect(error.exception == (c.status == 404 ? "NotFoundException" : "ValidationException"))
        if let rest = c.rest {
            guard case .failure(let routeError) = RESTRoute.parse(method: rest.method, target: RESTRoute.defaultBasePath + rest.target)
            else {
                Issue.record("REST accepts \(rest.target)")
                return
            }
            if c.name.hasSuffix("not UTF-8") {
                #expect(routeError.contextError(method: rest.method, path: rest.target).status == error.status)
            } else {
                #expect(routeError.contextError(method: rest.method, path: rest.target) == error)
            }
        }
    }

    @Test("Every strict prefix of a valid request is refused, never read past its end")
    func everyPrefix() throws {
        let bytes = try BatchCodec.encodeRequest(Array(Self.items.prefix(4)))
        for n in 0..<bytes.count {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeRequest(Array(bytes.prefix(n))) }
        }
        let response = Array(try BatchCodec.encodeResponse(Array(Self.results.prefix(5))).readableBytesView)
        for n in 0..<response.count {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeResponse(Array(response.prefix(n))) }
        }
    }

    @Test("More items than the receiver takes: refused from the header, a 413")
    func tooManyItems() throws {
        let bytes = try BatchCodec.encodeRequest(Array(repeating: BatchItem(.queryTask(serviceID: 1, taskID: 1)), count: 3))
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
        Malformed(name: "a request's magic", bytes: Array("CSB3".utf8) + u32(1) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0], error: .badMagic),
        Malformed(name: "version 2's magic", bytes: Array("CSR2".utf8) + u32(1) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0], error: .badMagic),
        Malformed(name: "count 0", bytes: Array("CSR3".utf8) + u32(0), error: .emptyBatch),
        Malformed(name: "count 2, one result", bytes: Array("CSR3".utf8) + u32(2) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 19, needed: "2 results")),
        Malformed(name: "location past the end", bytes: Array("CSR3".utf8) + u32(1) + [0, 201, 0, 9, 0x2F, 0, 0, 0, 0, 0, 0, 0],
                  error: .truncated(offset: 12, needed: "location of result 0")),
        Malformed(name: "body past the end", bytes: Array("CSR3".utf8) + u32(1) + [0, 200, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x7B, 0x7D],
                  error: .truncated(offset: 19, needed: "body of result 0")),
        Malformed(name: "trailing bytes", bytes: Array("CSR3".utf8) + u32(1) + [0, 204, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9],
                  error: .trailingBytes(offset: 19, count: 1)),
    ]

    @Test("Malformed responses are refused", arguments: malformedResponses)
    func malformedResponse(c: Malformed) {
        #expect(throws: c.error) { try BatchCodec.decodeResponse(c.bytes) }
    }

    @Test("Encoding refuses what its fields cannot hold")
    func encodeLimits() {
        let big = String(repeating: "a", count: 65536)
        #expect(throws: BatchCodecError.emptyBatch) { try BatchCodec.encodeRequest([]) }
        #expect(throws: BatchCodecError.emptyBatch) { try BatchCodec.encodeResponse([]) }
        #expect(throws: BatchCodecError.fieldTooLong(field: "tenant", length: 65536)) {
            try BatchCodec.encodeRequest([BatchItem(.startService, tenant: big)])
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "auth", length: 65536)) {
            try BatchCodec.encodedSize(of: BatchItem(.startService, authorization: big))
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "key", length: 65536)) {
            try BatchCodec.encodedSize(of: BatchItem(.startService, idempotencyKey: big))
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "params", length: 65536 + 5 + 2)) {
            try BatchCodec.encodedSize(of: BatchItem(.queryTasks(serviceID: 1, filter: Self.filter(types: [big]))))
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "location", length: 65536)) {
            try BatchCodec.encodeResponse([BatchResult(status: 201, location: big)])
        }
        #expect(throws: BatchCodecError.fieldTooLong(field: "status", length: 70000)) {
            try BatchCodec.encodeResponse([BatchResult(status: 70000)])
        }
    }

    @Test("Ids out of range are never truncated into valid ones: the core refuses them")
    func idsOutOfRange() throws {
        let items = [BatchItem(.queryTask(serviceID: -1, taskID: 1)), BatchItem(.queryTask(serviceID: 1, taskID: 1 << 32 | 5)),
                     BatchItem(.queryTasks(serviceID: 1, filter: Self.filter(state: 1 << 32 | 5)))]
        for item in try BatchCodec.decodeRequest(try BatchCodec.encodeRequest(items)) {
            #expect(throws: ContextError.self) { try item.route.get() }
        }
    }

    @Test("Invalid UTF-8 in a header field is not a framing error: it fails the item's own checks")
    func invalidUTF8() throws {
        let bytes = Self.magic + Self.u32(1) + Self.item(tenant: [0xC3], auth: [0x41, 0xFF])
        let items = try BatchCodec.decodeRequest(bytes)
        #expect(items[0].tenant == "\u{FFFD}")
        #expect(items[0].authorization == "A\u{FFFD}")
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
            BatchItem(.startTask(serviceID: 7), tenant: "t", body: Array("{}".utf8), trace: Self.trace),
            BatchItem(.queryService(serviceID: 7, include: ServiceInclude())),
            BatchItem(.startService, body: Array("{}".utf8), idempotencyKey: "k",
                      keyMadeByGateway: true, keyIsFresh: true, trace: Self.trace),
        ]
        let bytes = try BatchCodec.encodeRequest(items)
        #expect(try BatchCodec.decodeRequest(bytes).map(\.item) == items)
        var built: [UInt8] = []
        try BatchCodec.appendRequestHeader(count: items.count, to: &built)
        for item in items { try BatchCodec.appendItem(item, to: &built) }
        #expect(built == bytes)
    }

    @Test("The trace is bit 2 of the flags, then trace id, parent id and flags, before the body")
    func layout() throws {
        let item = BatchItem(.startService, body: Array("{}".utf8), trace: Self.trace)
        let bytes = try BatchCodec.encodeRequest([item])
        let expected: [UInt8] = Array("CSB3".utf8) + [0, 0, 0, 1] + [1] + [0, 0, 0, 0, 0, 0, 0, 0] + [0, 0, 0, 0] + [0, 0]
            + [0, 0] + [0, 0] + [0, 0] + [4]
            + [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36]
            + [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7] + [1]
            + [0, 0, 0, 2] + Array("{}".utf8)
        #expect(bytes == expected)
    }

    @Test("A trace cut short is a framing error; zero ids are read as no trace")
    func malformed() throws {
        let bytes = try BatchCodec.encodeRequest([BatchItem(.queryTask(serviceID: 1, taskID: 1), trace: Self.trace)])
        for cut in 1...29 {
            #expect(throws: BatchCodecError.self) { try BatchCodec.decodeRequest(Array(bytes.dropLast(cut))) }
        }
        var zero = bytes
        for i in 30..<54 { zero[i] = 0 }  // trace id and parent id (after 8 + 22 bytes)
        #expect(try BatchCodec.decodeRequest(zero)[0].trace == nil)
        #expect(try BatchCodec.decodeRequest(bytes)[0].trace == Self.trace)
    }
}
