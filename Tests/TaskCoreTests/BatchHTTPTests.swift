import ContextModel
import Foundation
import NIOCore
import Testing
@testable import TaskCore

/// The batch extension over a real socket, on a real SQLite file.
@Suite("Batch endpoint over HTTP")
struct BatchHTTPTests {
    static let timestamp = "2017-04-27T10:18:00.000Z"

    static func start(_ sid: Int64, _ body: String, tenant: String? = nil, auth: String? = nil) -> BatchItem {
        BatchItem(method: .post, target: "/services/\(sid)/tasks/start", tenant: tenant, authorization: auth, body: Array(body.utf8))
    }

    @Test("100 Start Task items: 100 results in order, ids 1...100, 201, Location, {\"task_id\":N}, one commit",
          arguments: CoreHarness.Storage.durable)
    func hundredStarts(storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let sid = try await core.startService()
            let commitsBefore = core.commits
            let items = (0..<100).map { Self.start(sid, #"{"task_type":"t\#($0)"}"#) }
            let (response, results) = try await core.batch(items)
            #expect(core.commits - commitsBefore == 1, "the whole batch is one transaction")
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/x-cs-batch")
            #expect(results.count == 100)
            for (i, r) in results.enumerated() {
                #expect(r.status == 201)
                #expect(r.location == "/genesys/1/cs/service/\(sid)/tasks/\(i + 1)")
                #expect(String(buffer: r.body) == #"{"task_id":\#(i + 1)}"#)
                #expect(r.retryAfter == nil)
            }
            // Stored as sent, in order; the single call carries on from there.
            let list = try JSONSerialization.jsonObject(with: Data(try await core.call("GET", "/services/\(sid)/tasks").body)) as! [[String: Any]]
            #expect(list.map { $0["task_id"] as! Int } == Array(1...100))
            #expect(list.map { $0["task_type"] as! String } == (0..<100).map { "t\($0)" })
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}").text == #"{"task_id":101}"#)
        }
    }

    @Test("Group commit: a batch of 100 writes costs one commit, 100 single calls cost 100",
          arguments: CoreHarness.Storage.durable)
    func groupCommit(storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let sid = try await core.startService()
            var before = core.commits
            let items = (0..<100).map { i in
                i % 2 == 0 ? Self.start(sid, "{}") : BatchItem(method: .post, target: "/services/\(sid)/states/start", body: Array("{}".utf8))
            }
            let (_, results) = try await core.batch(items)
            #expect(results.allSatisfy { $0.status == 201 })
            #expect(core.commits - before == 1)

            before = core.commits
            for _ in 0..<100 {
                #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}").status == 201)
            }
            #expect(core.commits - before == 100)

            // Writes with a read in the middle: two groups, two commits.
            before = core.commits
            let (_, mixed) = try await core.batch([
                Self.start(sid, "{}"), Self.start(sid, "{}"),
                BatchItem(method: .get, target: "/services/\(sid)/tasks/151"),
                Self.start(sid, "{}"),
            ])
            #expect(mixed.map(\.status) == [201, 201, 200, 201])
            #expect(core.commits - before == 2)
        }
    }

    enum Invalid: String, CaseIterable, Sendable {
        case badJSON, unknownState, unknownService, wrongTenant

        func item(_ sid: Int64) -> BatchItem {
            switch self {
            case .badJSON: BatchHTTPTests.start(sid, #"{"task_type":"x""#)
            case .unknownState: BatchHTTPTests.start(sid, #"{"state_id":9}"#)
            case .unknownService: BatchHTTPTests.start(sid + 1000, "{}")
            case .wrongTenant: BatchHTTPTests.start(sid, "{}", tenant: "tenant-b")
            }
        }

        var expected: (Int, String, String?) {
            switch self {
            case .badJSON: (400, "ValidationException", nil)
            case .unknownState: (404, "NotFoundException", "There are no state found for : 9")
            case .unknownService: (404, "NotFoundException", "There are no service found for : 1001")
            case .wrongTenant: (404, "NotFoundException", "There are no service found for : 1")
            }
        }
    }

    @Test("An invalid item in the middle gets its own 4xx; the others succeed and are all the store holds",
          arguments: Invalid.allCases, CoreHarness.Storage.durable)
    func invalidItem(_ invalid: Invalid, storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let sid = try await core.startService()
            #expect(sid == 1)
            let items = [Self.start(sid, #"{"n":0}"#), Self.start(sid, #"{"n":1}"#), invalid.item(sid),
                         Self.start(sid, #"{"n":2}"#), Self.start(sid, #"{"n":3}"#)]
            let before = core.commits
            let (_, results) = try await core.batch(items)
            #expect(core.commits - before == 1)
            #expect(results.map(\.status) == [201, 201, invalid.expected.0, 201, 201])
            // The refused item took no id.
            #expect([0, 1, 3, 4].map { String(buffer: results[$0].body) }
                    == (1...4).map { #"{"task_id":\#($0)}"# })
            let error = try jsonObject(results[2].body)
            #expect(error.count == 2)
            #expect(error["exception"] as? String == invalid.expected.1)
            if let message = invalid.expected.2 { #expect(error["message"] as? String == message) }
            #expect(results[2].location == nil)

            let list = try JSONSerialization.jsonObject(with: Data(try await core.call("GET", "/services/\(sid)/tasks").body)) as! [[String: Any]]
            #expect(list.map { $0["task_id"] as! Int } == [1, 2, 3, 4])
            #expect(list.map { $0["n"] as! Int } == [0, 1, 2, 3])
            #expect(try await core.call("GET", "/services/\(sid)", headers: [("ContactCenterId", "tenant-b")]).status == 404)
            #expect(try await core.call("GET", "/services/1001").status == 404)
        }
    }

    @Test("Each item answers exactly what its single call answers: every path, error and read, in order",
          arguments: CoreHarness.Storage.durable)
    func sameAsSingleCalls(storage: CoreHarness.Storage) async throws {
        let auth = "Bearer s3cret"
        let ts = Self.timestamp
        func item(_ method: BatchItem.Method, _ target: String, _ body: String? = nil,
                  tenant: String? = nil, auth: String? = auth) -> BatchItem {
            BatchItem(method: method, target: target, tenant: tenant, authorization: auth, body: Array((body ?? "").utf8))
        }
        let items: [BatchItem] = [
            item(.post, "/services/1/tasks/start", #"{"task_type":"a","timestamp":"\#(ts)"}"#),
            item(.post, "/services/1/tasks/start", "{"),
            item(.post, "/services/1/tasks/start", #"{"state_id":9,"timestamp":"\#(ts)"}"#),
            item(.post, "/services/999/tasks/start", #"{"timestamp":"\#(ts)"}"#),
            item(.post, "/services/1/tasks/start", #"{"timestamp":"\#(ts)"}"#, tenant: "other"),
            item(.post, "/services/1/tasks/start", #"{"timestamp":"\#(ts)"}"#, tenant: "bad tenant"),
            item(.post, "/services/1/tasks/start", #"{"timestamp":"\#(ts)"}"#, auth: nil),
            item(.post, "/services/1/tasks/start", #"{"timestamp":"\#(ts)"}"#, auth: "Bearer nope"),
            item(.post, "/services/1/tasks/start", #"{"x":""# + String(repeating: "y", count: 5000) + #""}"#),
            item(.post, "/services/1/tasks/start", #"{"task_id":3}"#),
            // Ids out of range: what REST answers for the same path (a batch item has no path,
            // so the 404/405 of an unknown path or method cannot be sent: BatchCodecTests).
            BatchItem(.queryService(serviceID: 0, include: ServiceInclude()), authorization: auth),
            BatchItem(.queryTask(serviceID: 1, taskID: 0), authorization: auth),
            BatchItem(.endTask(serviceID: 1, taskID: 2147483648), authorization: auth,
                      body: Array(#"{"timestamp":"\#(ts)"}"#.utf8)),
            item(.post, "/services/1/tasks/start", #"{"task_type":"b","state_id":1,"timestamp":"\#(ts)"}"#),
            item(.get, "/services/1/tasks"),
            item(.post, "/services/1/tasks/1/end", #"{"disposition":"ok","timestamp":"\#(ts)"}"#),
            item(.post, "/services/1/tasks/1/end", #"{"timestamp":"\#(ts)"}"#),
            item(.get, "/service/1/tasks/1"),
            item(.get, "/services/1/tasks/completed?task_types=a,b"),
            item(.post, "/services/1/states/start", #"{"state_type":"s","timestamp":"\#(ts)"}"#),
            item(.post, "/services/1/states/2/end", #"{"timestamp":"\#(ts)"}"#),
            item(.get, "/services/1/states/2?active_tasks=true"),
            item(.post, "/services/start", #"{"customer_id":"c","timestamp":"\#(ts)"}"#),
            item(.delete, "/services/2"),
            item(.get, "/services/2"),
            item(.delete, "/services/2"),
            item(.post, "/services/1/tasks/start", #"{"task_type":"c","timestamp":"\#(ts)","ext":[1,2.50,{"k":null}]}"#),
            item(.get, "/services/1?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"),
        ]
        let configure: (inout CoreConfiguration) -> Void = {
            $0.authTokens = ["s3cret"]
            $0.limits = JSONLimits(maxBytes: 4096, maxDepth: 8)
        }
        let setUp = [("/services/start", #"{"service_type":"sales","timestamp":"\#(ts)"}"#),
                     ("/services/1/states/start", #"{"timestamp":"\#(ts)"}"#)]
        let headers = [("Authorization", auth)]

        var batched: [BatchResult] = []
        try await CoreHarness.with(storage, configure: configure) { core in
            for (path, body) in setUp { #expect(try await core.call("POST", path, body: body, headers: headers).status == 201) }
            let (response, results) = try await core.batch(items)
            #expect(response.status == 200)
            batched = results
        }
        var single: [BatchResult] = []
        try await CoreHarness.with(storage, configure: configure) { core in
            for (path, body) in setUp { #expect(try await core.call("POST", path, body: body, headers: headers).status == 201) }
            for item in items {
                var h: [(String, String)] = []
                if let t = item.tenant { h.append(("ContactCenterId", t)) }
                if let a = item.authorization { h.append(("Authorization", a)) }
                let r: RawHTTPClient.Response
                if item.body.readableBytes > 4096 {
                    // Refused from Content-Length: send the head only, or the server's close
                    // with the body unread could reset the connection under the answer.
                    var head = "\(item.method.name) \(CoreHarness.base)\(item.target) HTTP/1.1\r\nHost: x\r\n"
                    for (k, v) in h { head += "\(k): \(v)\r\n" }
                    head += "Content-Type: application/json\r\nContent-Length: \(item.body.readableBytes)\r\n\r\n"
                    r = try await core.send(Array(head.utf8))
                } else {
                    r = try await core.call(item.method.name, item.target,
                                            body: item.body.readableBytes == 0 ? nil : String(buffer: item.body), headers: h)
                }
                single.append(BatchResult(status: r.status, location: r.header("location"),
                                          retryAfter: r.header("retry-after").flatMap { Int($0) }, body: r.body))
            }
        }
        #expect(batched.count == items.count)
        for (i, (b, s)) in zip(batched, single).enumerated() {
            #expect(b == s, "item \(i) \(items[i].method.name) \(items[i].target): batch \(b.status) \(String(buffer: b.body)) vs single \(s.status) \(String(buffer: s.body))")
        }
        // The answers are the ones the contract gives, not merely equal.
        #expect(batched.map(\.status) == [201, 400, 404, 404, 404, 400, 401, 401, 413, 400, 400, 400, 400,
                                          201, 200, 204, 409, 200, 200, 201, 204, 200, 201, 200, 404, 404, 201, 200])
    }

    @Test("A group of writes only (one transaction) answers as its single calls do and leaves the same data",
          arguments: CoreHarness.Storage.durable)
    func writeGroupSameAsSingleCalls(storage: CoreHarness.Storage) async throws {
        let ts = Self.timestamp
        func item(_ target: String, _ body: String = "{}", tenant: String? = nil, method: BatchItem.Method = .post) -> BatchItem {
            BatchItem(method: method, target: target, tenant: tenant, body: Array(body.utf8))
        }
        // Ids made in the group are used later in it; ends and deletes between starts; refusals
        // of every kind (unknown state, service, tenant; already completed) in between.
        let items: [BatchItem] = [
            item("/services/1/tasks/start", #"{"task_type":"a","timestamp":"\#(ts)"}"#),
            item("/services/1/states/start", #"{"state_type":"s","timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/start", #"{"state_id":2,"timestamp":"\#(ts)","n":1}"#),
            item("/services/1/tasks/start", #"{"state_id":3,"timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/1/end", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/2/end", #"{"timestamp":"\#(ts)","d":true}"#),
            item("/services/1/tasks/2/end", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/start", #"{"task_type":7,"state_id":1,"timestamp":"\#(ts)"}"#),
            item("/services/start", #"{"customer_id":"c","timestamp":"\#(ts)"}"#),
            item("/services/3/tasks/start", #"{"timestamp":"\#(ts)"}"#),
            item("/services/2/tasks/start", #"{"timestamp":"\#(ts)"}"#),
            item("/services/2/states/start", #"{"timestamp":"\#(ts)"}"#),
            item("/services/2/tasks/start", #"{"state_id":1,"timestamp":"\#(ts)"}"#, tenant: "other"),
            item("/services/start", #"{"timestamp":"\#(ts)"}"#, tenant: "other"),
            item("/services/3/tasks/start", #"{"timestamp":"\#(ts)"}"#, tenant: "other"),
            item("/services/2", method: .delete),
            item("/services/2/tasks/start", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/states/2/end", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/states/2/end", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/start", #"{"state_id":2,"timestamp":"\#(ts)"}"#),
            item("/services/1/end", #"{"timestamp":"\#(ts)"}"#),
            item("/services/1/tasks/start", #"{"timestamp":"\#(ts)"}"#),
            item("/services/start", #"{"timestamp":"\#(ts)"}"#),
        ]
        let reads = ["/services/1?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true",
                     "/services/2", "/services/3?active_tasks=true", "/services/4?active_tasks=true"]
        func state(_ core: CoreHarness) async throws -> [String] {
            var out: [String] = []
            for path in reads {
                let r = try await core.call("GET", path, headers: path.hasPrefix("/services/3") ? [("ContactCenterId", "other")] : [])
                out.append("\(r.status) \(r.text)")
            }
            return out
        }
        var batched: [BatchResult] = []
        var batchedState: [String] = []
        try await CoreHarness.with(storage) { core in
            #expect(try await core.startService(#"{"timestamp":"\#(ts)"}"#) == 1)
            #expect(try await core.call("POST", "/services/1/states/start", body: #"{"timestamp":"\#(ts)"}"#).status == 201)
            let commits = core.commits
            let (_, results) = try await core.batch(items)
            #expect(core.commits - commits == 1, "one transaction")
            batched = results
            batchedState = try await state(core)
        }
        var single: [BatchResult] = []
        var singleState: [String] = []
        try await CoreHarness.with(storage) { core in
            #expect(try await core.startService(#"{"timestamp":"\#(ts)"}"#) == 1)
            #expect(try await core.call("POST", "/services/1/states/start", body: #"{"timestamp":"\#(ts)"}"#).status == 201)
            for item in items {
                let r = try await core.call(item.method.name, item.target, body: String(buffer: item.body),
                                            headers: item.tenant.map { [("ContactCenterId", $0)] } ?? [])
                single.append(BatchResult(status: r.status, location: r.header("location"), body: r.body))
            }
            singleState = try await state(core)
        }
        for (i, (b, s)) in zip(batched, single).enumerated() {
            #expect(b == s, "item \(i) \(items[i].target): batch \(b.status) \(String(buffer: b.body)) vs single \(s.status) \(String(buffer: s.body))")
        }
        #expect(batched.map(\.status) == [201, 201, 201, 404, 204, 204, 409, 201, 201, 404, 201, 201, 404, 201, 201,
                                          200, 404, 204, 409, 201, 204, 201, 201])
        #expect(batchedState == singleState)
    }

    @Test("Reads after writes in one batch see them")
    func readYourWrites() async throws {
        try await CoreHarness.with { core in
            let before = core.commits
            let (_, r) = try await core.batch([
                BatchItem(method: .post, target: "/services/start", body: Array(#"{"customer_id":"c-1"}"#.utf8)),
                Self.start(1, #"{"task_type":"first"}"#),
                BatchItem(method: .get, target: "/services/1/tasks/1"),
                BatchItem(method: .post, target: "/services/1/tasks/1/end", body: Array(#"{"disposition":"done"}"#.utf8)),
                Self.start(1, #"{"task_type":"second"}"#),
                BatchItem(method: .get, target: "/services/1?active_tasks=true&completed_tasks=true"),
                BatchItem(method: .delete, target: "/services/1"),
                BatchItem(method: .get, target: "/services/1"),
            ])
            #expect(r.map(\.status) == [201, 201, 200, 204, 201, 200, 200, 404])
            #expect(core.commits - before == 3, "three groups of writes between the reads")
            let task = try jsonObject(r[2].body)
            #expect(task["task_type"] as? String == "first")
            #expect(task["completed"] == nil)
            let service = try jsonObject(r[5].body)
            #expect(service["customer_id"] as? String == "c-1")
            #expect((service["completed_tasks"] as? [[String: Any]])?.map { $0["task_id"] as! Int } == [1])
            #expect((service["active_tasks"] as? [[String: Any]])?.map { $0["task_type"] as! String } == ["second"])
            #expect(try jsonObject(r[7].body)["exception"] as? String == "NotFoundException")
        }
    }

    @Test("Too many items or too many bytes: 413 for the whole batch, and nothing changed")
    func limits() async throws {
        try await CoreHarness.with(configure: { $0.maxBatchItems = 10; $0.maxBatchBytes = 4096 }) { core in
            let sid = try await core.startService()
            let before = core.commits

            let tooMany = try BatchCodec.encodeRequest((0..<11).map { _ in Self.start(sid, "{}") })
            let r1 = try await core.send(core.batchRequest(tooMany))
            #expect(r1.status == 413)
            #expect(r1.header("content-type") == "application/json")
            let e1 = try jsonObject(r1.body)
            #expect(e1["exception"] as? String == "PayloadTooLargeException")
            #expect(e1["message"] as? String == "a batch holds at most 10 items, this one has 11")

            // Announced by Content-Length: refused before the body is read, connection closed.
            let big = try BatchCodec.encodeRequest([Self.start(sid, #"{"x":""# + String(repeating: "y", count: 4100) + #""}"#)])
            let port = core.port
            // Only the head goes out (as a client that waits would do): unread body bytes in
            // the server's socket would turn its close into a reset that can eat the answer.
            let request = Array(core.batchRequest(big).dropLast(big.count))
            let (r2, closed) = try await detached {
                let client = try RawHTTPClient(port: port)
                try client.send(request)
                let r = try client.readResponse()
                return (r, try client.isClosedByPeer())
            }
            #expect(r2.status == 413)
            #expect(try jsonObject(r2.body)["exception"] as? String == "PayloadTooLargeException")
            #expect(try jsonObject(r2.body)["message"] as? String == "batch larger than 4096 bytes")
            #expect(closed)

            // Chunked, growing past the limit: read, dropped, refused; the connection stays usable.
            let (r3, after) = try await detached {
                let client = try RawHTTPClient(port: port)
                var head = "POST \(CoreHarness.base)/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-cs-batch\r\n"
                head += "Transfer-Encoding: chunked\r\n\r\n" + String(big.count, radix: 16) + "\r\n"
                try client.send(Array(head.utf8) + big + Array("\r\n0\r\n\r\n".utf8))
                let r = try client.readResponse()
                try client.send(RawHTTPClient.request("GET", "\(CoreHarness.base)/services/\(sid)/tasks"))
                return (r, try client.readResponse())
            }
            #expect(r3.status == 413)
            #expect(after.text == "[]")

            #expect(core.commits == before)
            // Exactly at both limits is fine.
            let (ok, results) = try await core.batch((0..<10).map { _ in Self.start(sid, "{}") })
            #expect(ok.status == 200)
            #expect(results.map(\.status) == Array(repeating: 201, count: 10))
        }
    }

    @Test("An item's body over the per-request limit: that item 413, the others go on")
    func itemBodyLimit() async throws {
        try await CoreHarness.with(configure: { $0.limits = JSONLimits(maxBytes: 64, maxDepth: 3) }) { core in
            let sid = try await core.startService()
            let (_, r) = try await core.batch([
                Self.start(sid, #"{"a":1}"#),
                Self.start(sid, #"{"x":""# + String(repeating: "y", count: 100) + #""}"#),
                Self.start(sid, #"{"a":[[[1]]]}"#),
                Self.start(sid, #"{"a":2}"#),
            ])
            #expect(r.map(\.status) == [201, 413, 400, 201])
            #expect(try jsonObject(r[1].body)["exception"] as? String == "PayloadTooLargeException")
            #expect(String(buffer: r[3].body) == #"{"task_id":2}"#)
        }
    }

    @Test("A batch that is not application/x-cs-batch: 415 in the contract's shape")
    func contentType() async throws {
        try await CoreHarness.with { core in
            let sid = try await core.startService()
            let body = try BatchCodec.encodeRequest([Self.start(sid, "{}")])
            for type in ["application/json", "text/plain", "application/x-cs-batch2", nil] as [String?] {
                let r = try await core.send(core.batchRequest(body, contentType: type))
                #expect(r.status == 415, "\(type ?? "none")")
                let o = try jsonObject(r.body)
                #expect(o["exception"] as? String == "UnsupportedMediaTypeException")
                #expect(o.count == 2)
            }
            #expect(try await core.call("GET", "/services/\(sid)/tasks").text == "[]")
            // Parameters and case do not matter.
            let ok = try await core.send(core.batchRequest(body, contentType: "Application/X-CS-Batch; version=1"))
            #expect(ok.status == 200)
        }
    }

    @Test("A malformed batch: 400 for the whole request, and nothing changed")
    func malformed() async throws {
        try await CoreHarness.with { core in
            let sid = try await core.startService()
            let good = try BatchCodec.encodeRequest((0..<3).map { _ in Self.start(sid, "{}") })
            var reservedFlags = good
            reservedFlags[8 + 2 * (good.count - 8) / 3 + 21] = 8  // the third item's flags byte
            var countZero = good
            countZero[4...7] = [0, 0, 0, 0]
            var countTooHigh = good
            countTooHigh[7] = 4
            let bodies: [(String, [UInt8])] = [
                ("empty", []),
                ("bad magic", Array("CSR1".utf8) + good.dropFirst(4)),
                ("JSON", Array("{}".utf8)),
                ("count 0", countZero),
                ("count past the items", countTooHigh),
                ("truncated", Array(good.dropLast())),
                ("trailing bytes", good + [0]),
                ("reserved flag bits in the last item", reservedFlags),
                ("version 2", Array("CSB2".utf8) + good.dropFirst(4)),
            ]
            let before = core.commits
            for (name, body) in bodies {
                let r = try await core.send(core.batchRequest(body))
                #expect(r.status == 400, "\(name): \(r)")
                let o = try jsonObject(r.body)
                #expect(o["exception"] as? String == "ValidationException", "\(name)")
                #expect((o["message"] as? String)?.hasPrefix("malformed batch") == true, "\(name): \(r)")
            }
            #expect(core.commits == before)
            #expect(try await core.call("GET", "/services/\(sid)/tasks").text == "[]")
            #expect(try await core.batch(try BatchCodec.decodeRequest(good).map { $0.item! }).1.map(\.status) == [201, 201, 201])
        }
    }

    @Test("A malformed item (unknown operation, id 0, bad parameters) fails alone, as its REST request would; the others run")
    func malformedItem() async throws {
        try await CoreHarness.with { core in
            let sid = try await core.startService()
            var body: [UInt8] = []
            try BatchCodec.appendRequestHeader(count: 5, to: &body)
            try BatchCodec.appendItem(Self.start(sid, "{}"), to: &body)
            // Operation 99, else a Start Task: no such operation (404).
            var unknown: [UInt8] = []
            try BatchCodec.appendItem(Self.start(sid, "{}"), to: &unknown)
            unknown[0] = 99
            body += unknown
            // Start Task with service id 0: the 400 of POST /services/0/tasks/start.
            try BatchCodec.appendItem(BatchItem(.startTask(serviceID: 0), body: Array("{}".utf8)), to: &body)
            // Query Service with an unknown include bit.
            try BatchCodec.appendItem(BatchItem(.queryService(serviceID: sid, include: ServiceInclude())), to: &body)
            body[body.count - 1 - 4 - 1 - 2 - 2 - 2] = 0x10
            try BatchCodec.appendItem(Self.start(sid, "{}"), to: &body)
            let before = core.commits
            let r = try await core.send(core.batchRequest(body))
            #expect(r.status == 200)
            let results = try BatchCodec.decodeResponse(r.body)
            #expect(results.map(\.status) == [201, 404, 400, 400, 201])
            #expect(core.commits - before == 1, "the refusals split no group")
            #expect(try jsonObject(results[1].body)["exception"] as? String == "NotFoundException")
            let single = try await core.call("POST", "/services/0/tasks/start", body: "{}")
            #expect(results[2].body == ByteBuffer(bytes: single.body))
            #expect(try jsonObject(results[3].body)["exception"] as? String == "ValidationException")
            #expect(String(buffer: results[4].body) == #"{"task_id":2}"#)
        }
    }

    @Test("batchEnabled = false: the path is a 404 like any unknown path")
    func disabled() async throws {
        try await CoreHarness.with(configure: { $0.batchEnabled = false }) { core in
            let sid = try await core.startService()
            let body = try BatchCodec.encodeRequest([Self.start(sid, "{}")])
            let r = try await core.send(core.batchRequest(body))
            #expect(r.status == 404)
            #expect(r.text == #"{"message":"no operation at /genesys/1/cs/batch","exception":"NotFoundException"}"#)
            #expect(try await core.call("GET", "/services/\(sid)/tasks").text == "[]")
        }
    }

    @Test("Enabled, a method other than POST on the batch path: 405 with Allow: POST")
    func wrongMethod() async throws {
        try await CoreHarness.with(.memory) { core in
            for method in ["GET", "PUT", "DELETE"] {
                let r = try await core.call(method, "/batch")
                #expect(r.status == 405)
                #expect(r.header("allow") == "POST")
                #expect(try jsonObject(r.body)["exception"] as? String == "MethodNotAllowedException")
            }
            // A trailing slash names the same endpoint, as for every path.
            let body = try BatchCodec.encodeRequest([BatchItem(method: .post, target: "/services/start", body: Array("{}".utf8))])
            #expect(try await core.send(core.batchRequest(body, path: "/batch/")).status == 200)
        }
    }

    @Test("A batch pipelined between single calls is a write: answers in order, later reads see it")
    func pipelined() async throws {
        try await CoreHarness.with { core in
            let sid = try await core.startService()
            let port = core.port
            let batch = core.batchRequest(try BatchCodec.encodeRequest((0..<3).map { _ in Self.start(sid, "{}") }))
            let responses = try await detached {
                let client = try RawHTTPClient(port: port)
                var burst = RawHTTPClient.request("POST", "\(CoreHarness.base)/services/\(sid)/tasks/start", body: "{}")
                burst += RawHTTPClient.request("GET", "\(CoreHarness.base)/services/\(sid)/tasks/1")
                burst += batch
                burst += RawHTTPClient.request("GET", "\(CoreHarness.base)/services/\(sid)/tasks/4")
                burst += RawHTTPClient.request("POST", "\(CoreHarness.base)/services/\(sid)/tasks/start", body: "{}")
                try client.send(burst)
                return try (0..<5).map { _ in try client.readResponse() }
            }
            #expect(responses.map(\.status) == [201, 200, 200, 200, 201])
            #expect(try BatchCodec.decodeResponse(responses[2].body).map { String(buffer: $0.body) }
                    == (2...4).map { #"{"task_id":\#($0)}"# })
            #expect(responses[4].text == #"{"task_id":5}"#)
        }
    }

    @Test("Each item carries its own credentials and tenant; the batch request's headers are not inherited")
    func perItemCredentials() async throws {
        try await CoreHarness.with(.memory, configure: { $0.authTokens = ["s3cret"] }) { core in
            let body = try BatchCodec.encodeRequest([
                BatchItem(method: .post, target: "/services/start", tenant: "a", authorization: "Bearer s3cret", body: Array("{}".utf8)),
                BatchItem(method: .post, target: "/services/start", tenant: "a", body: Array("{}".utf8)),
                BatchItem(method: .get, target: "/services/1", tenant: "a", authorization: "Bearer s3cret"),
                BatchItem(method: .get, target: "/services/1", authorization: "Bearer s3cret"),
            ])
            let r = try await core.send(core.batchRequest(body, headers: [("Authorization", "Bearer s3cret"), ("ContactCenterId", "a")]))
            let results = try BatchCodec.decodeResponse(r.body)
            #expect(results.map(\.status) == [201, 401, 200, 404])
        }
    }
}

/// Storage failures within a batch, on a store that fails on demand (no socket needed).
@Suite("Batch storage failures")
struct BatchStorageFailureTests {
    /// An in-memory store whose next `write` calls throw a storage error.
    final class FailingStore: TaskStore, @unchecked Sendable {
        let inner = InMemoryTaskStore()
        var identity: StoreIdentity { inner.identity }
        let lock = NSLock()
        var failures: [any Error] = []
        var writeCalls: [Int] = []

        func locked<T>(_ body: () -> T) -> T {
            lock.lock()
            defer { lock.unlock() }
            return body()
        }

        func failNext(with error: any Error) { locked { failures.append(error) } }

        /// Each write waits this long first (a slow store: keys stay in flight).
        var delay: Duration = .zero

        func write(_ requests: [WriteRequest]) async throws -> [WriteReply] {
            let (failure, delay): ((any Error)?, Duration) = locked {
                writeCalls.append(requests.count)
                return (failures.isEmpty ? nil : failures.removeFirst(), self.delay)
            }
            if delay > .zero { try await Task.sleep(for: delay) }
            if let failure { throw failure }
            return try await inner.write(requests)
        }
        func purgeExpiredKeys(limit: Int) async throws -> Int { try await inner.purgeExpiredKeys(limit: limit) }
        func service(tenant: String, serviceID: Int64, include: ServiceInclude) async throws -> ResourceView {
            try await inner.service(tenant: tenant, serviceID: serviceID, include: include)
        }
        func state(tenant: String, serviceID: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView {
            try await inner.state(tenant: tenant, serviceID: serviceID, stateID: stateID, include: include)
        }
        func task(tenant: String, serviceID: Int64, taskID: Int64) async throws -> ResourceRecord {
            try await inner.task(tenant: tenant, serviceID: serviceID, taskID: taskID)
        }
        func tasks(tenant: String, serviceID: Int64, filter: TaskFilter) async throws -> [ResourceRecord] {
            try await inner.tasks(tenant: tenant, serviceID: serviceID, filter: filter)
        }
        func close() async throws {}
    }

    static func batch(_ service: ContextService, _ items: [BatchItem]) async throws -> [BatchResult] {
        let response = await service.handle(CoreRequest(method: "POST", target: "/genesys/1/cs/batch",
                                                        contentType: BatchCodec.contentType,
                                                        body: try BatchCodec.encodeRequest(items)))
        #expect(response.status == 200)
        #expect(response.contentType == BatchCodec.contentType)
        return try BatchCodec.decodeResponse(response.body)
    }

    static let startService = BatchItem(method: .post, target: "/services/start", body: Array("{}".utf8))

    @Test("A store failure answers every write of its group with the failure, none acknowledged; later items run",
          arguments: [(TaskStoreError.Kind.busy, 503, "OverloadedException"), (.unavailable, 503, "StoreUnavailableException"),
                      (.outcomeUnknown, 500, "OutcomeUnknownException"), (.failed, 500, "InternalException")])
    func storageFailure(kind: TaskStoreError.Kind, status: Int, exception: String) async throws {
        let store = FailingStore()
        let service = ContextService(store: store)
        store.failNext(with: TaskStoreError(kind, "injected"))
        let results = try await Self.batch(service, [
            Self.startService, Self.startService,
            BatchItem(.queryTask(serviceID: 0, taskID: 1)),  // 400: needs no store, no group boundary
            Self.startService,
            BatchItem(method: .get, target: "/services/1"),
            Self.startService,
        ])
        #expect(store.locked { store.writeCalls } == [3, 1], "one write call per group of writes")
        #expect(results.map(\.status) == [status, status, 400, status, 404, 201])
        for r in [results[0], results[1], results[3]] {
            #expect(r.location == nil)
            #expect(r.retryAfter == (status == 503 ? 1 : nil))
            let o = try jsonObject(r.body)
            #expect(o["exception"] as? String == exception)
            #expect(!(o["message"] as! String).contains("injected"), "the store's own text stays in the log")
        }
        #expect(String(buffer: results[5].body) == #"{"service_id":1}"#)
    }

    @Test("A single call through the shared path: one write call of one command, same answers as before")
    func singleCall() async throws {
        let store = FailingStore()
        let service = ContextService(store: store)
        let created = await service.handle(CoreRequest(method: "POST", target: "/genesys/1/cs/services/start"))
        #expect(created == CoreResponse(status: 201, location: "/genesys/1/cs/services/1", body: Array(#"{"service_id":1}"#.utf8)))
        store.failNext(with: TaskStoreError(.busy, "injected"))
        let busy = await service.handle(CoreRequest(method: "POST", target: "/genesys/1/cs/services/start"))
        #expect(busy.status == 503)
        #expect(busy.retryAfter == 1)
        #expect(store.locked { store.writeCalls } == [1, 1])
    }
}

extension CoreHarness {
    /// Commits on the store so far (SQLite or PostgreSQL).
    var commits: Int {
        if let postgres = store as? PostgresTaskStore { return postgres.commits.withLockedValue { $0 } }
        return (store as! SQLiteTaskStore).committedTransactions
    }

    /// The raw bytes of a batch request.
    func batchRequest(_ body: [UInt8], contentType: String? = BatchCodec.contentType, path: String = "/batch",
                      headers: [(String, String)] = []) -> [UInt8] {
        var head = "POST \(Self.base)\(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// Raw request bytes on a fresh connection; one response.
    func send(_ bytes: [UInt8]) async throws -> RawHTTPClient.Response {
        let port = self.port
        return try await detached {
            let client = try RawHTTPClient(port: port)
            try client.send(bytes)
            return try client.readResponse()
        }
    }

    /// A batch of `items`; its HTTP response and its decoded results.
    func batch(_ items: [BatchItem]) async throws -> (RawHTTPClient.Response, [BatchResult]) {
        let response = try await send(batchRequest(try BatchCodec.encodeRequest(items)))
        guard response.status == 200 else { throw RawHTTPClient.Failure(description: "batch failed: \(response)") }
        return (response, try BatchCodec.decodeResponse(response.body))
    }
}

extension BatchItem {
    /// Tests: how the single call's method is spelled.
    enum Method: Sendable {
        case get, post, delete

        var name: String {
            switch self {
            case .get: "GET"
            case .post: "POST"
            case .delete: "DELETE"
            }
        }
    }

    /// Tests: the item of the REST call `method target` (relative to the base path), routed as
    /// the gateway routes a call before it batches it. The target must name an operation.
    init(method: Method, target: String, tenant: String? = nil, authorization: String? = nil, body: [UInt8] = [],
         idempotencyKey: String? = nil, keyMadeByGateway: Bool = false, keyIsFresh: Bool = false) {
        guard case .success(let route) = RESTRoute.parse(method: method.name, target: RESTRoute.defaultBasePath + target) else {
            preconditionFailure("\(method.name) \(target) names no operation")
        }
        self.init(route, tenant: tenant, authorization: authorization, body: body, idempotencyKey: idempotencyKey,
                  keyMadeByGateway: keyMadeByGateway, keyIsFresh: keyIsFresh)
    }

    /// Tests: the single call's method and target (relative to the base path).
    var method: Method {
        switch route.method {
        case "GET": .get
        case "DELETE": .delete
        default: .post
        }
    }

    var target: String { route.target(basePath: "") }
}
