import ContextModel
import Foundation
import HTTPServing
import NIOCore
import Testing
@testable import TaskCore

/// The REST API over a real socket, on a real SQLite file.
@Suite("Task core over HTTP")
struct CoreHTTPTests {
    @Test("The full life of a service: states, tasks in and out of states, completion, every query flag, delete", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func fullLife(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in

            let sid = try await core.startService(#"{"service_type":"sales","customer_id":"c-42","timestamp":"2017-04-27T10:18:00Z","channel":"ivr"}"#)
            #expect(sid == 1)

            let st1 = try await core.call("POST", "/services/\(sid)/states/start", body: #"{"state_type":"identify"}"#)
            #expect(st1.status == 201)
            #expect(st1.text == #"{"state_id":1}"#)
            #expect(st1.header("location") == "/genesys/1/cs/services/\(sid)/states/1")
            let st2 = try await core.call("POST", "/services/\(sid)/states/start", body: #"{"state_type":7}"#)
            #expect(st2.text == #"{"state_id":2}"#)

            // Task 1 inside state 1, task 2 outside any state, task 3 inside state 2.
            let t1 = try await core.call("POST", "/services/\(sid)/tasks/start",
                                         body: #"{"task_type":"customer info","state_id":1,"est_duration":460}"#)
            #expect(t1.status == 201)
            #expect(t1.text == #"{"task_id":1}"#)
            #expect(t1.header("location") == "/genesys/1/cs/service/\(sid)/tasks/1")
            #expect(t1.header("content-type") == "application/json")
            let t2 = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"task_type":12}"#)
            #expect(t2.text == #"{"task_id":2}"#)
            let t3 = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"task_type":"billing","state_id":2}"#)
            #expect(t3.text == #"{"task_id":3}"#)

            // Every Location resolves, the singular one included.
            let viaLocation = try await core.call("GET", "/service/\(sid)/tasks/1")
            #expect(viaLocation.status == 200)
            #expect(viaLocation.text == (try await core.call("GET", "/services/\(sid)/tasks/1")).text)
            let task1 = try jsonObject(viaLocation.body)
            #expect(task1["service_id"] as? Int == Int(sid))
            #expect(task1["task_id"] as? Int == 1)
            #expect(task1["state_id"] as? Int == 1)
            #expect(task1["est_duration"] as? Int == 460)
            #expect(task1["task_type"] as? String == "customer info")
            #expect(task1["completed"] == nil)

            // Complete task 1 with an end event; then state 1.
            let end1 = try await core.call("POST", "/services/\(sid)/tasks/1/end",
                                           body: #"{"disposition":"resolved","disposition_desc":"done","timestamp":"2017-04-27T10:20:00.5+00:00","note":1}"#)
            #expect(end1.status == 204)
            #expect(end1.body.isEmpty)
            #expect(try await core.call("POST", "/services/\(sid)/states/1/end").status == 204)

            let ended = try await core.call("GET", "/services/\(sid)/tasks/1")
            #expect(ended.text.contains(#""completed":{"timestamp":"2017-04-27T10:20:00.500Z","disposition":"resolved","disposition_desc":"done","note":1}"#))

            // Query Tasks with each filter.
            func ids(_ path: String) async throws -> [Int] {
                let r = try await core.call("GET", path)
                #expect(r.status == 200, "\(path): \(r)")
                let list = try JSONSerialization.jsonObject(with: Data(r.body)) as! [[String: Any]]
                return list.map { $0["task_id"] as! Int }
            }
            #expect(try await ids("/services/\(sid)/tasks") == [1, 2, 3])
            #expect(try await ids("/services/\(sid)/tasks/active") == [2, 3])
            #expect(try await ids("/services/\(sid)/tasks/completed") == [1])
            #expect(try await ids("/services/\(sid)/tasks?state_id=2") == [3])
            #expect(try await ids("/services/\(sid)/tasks?task_types=12,billing") == [2, 3])
            #expect(try await ids("/services/\(sid)/tasks?task_types=customer+info") == [1])
            #expect(try await ids("/services/\(sid)/tasks?task_types=customer%20info") == [1])
            #expect(try await ids("/services/\(sid)/tasks/active?task_types=billing&state_id=2") == [3])
            #expect(try await ids("/services/\(sid)/tasks/completed?state_id=2") == [])

            // Query State with its task arrays.
            let state1 = try jsonObject(try await core.call("GET", "/services/\(sid)/states/1?completed_tasks=true&active_tasks=true").body)
            #expect(state1["state_id"] as? Int == 1)
            #expect(state1["service_id"] as? Int == Int(sid))
            #expect((state1["completed_tasks"] as? [[String: Any]])?.map { $0["task_id"] as! Int } == [1])
            #expect((state1["active_tasks"] as? [[String: Any]])?.isEmpty == true)
            #expect((state1["completed_tasks"] as? [[String: Any]])?.first?["service_id"] == nil, "nested objects carry no service_id")

            // Query Service: no flags, then each flag alone, then all.
            let plain = try jsonObject(try await core.call("GET", "/services/\(sid)").body)
            #expect(plain["service_type"] as? String == "sales")
            #expect(plain["customer_id"] as? String == "c-42")
            #expect(plain["channel"] as? String == "ivr")
            #expect((plain["started"] as? [String: Any])?["timestamp"] as? String == "2017-04-27T10:18:00.000Z")
            for key in ["active_states", "completed_states", "active_tasks", "completed_tasks"] {
                #expect(plain[key] == nil)
            }
            let expected: [String: [Int]] = [
                "active_states": [2], "completed_states": [1], "active_tasks": [2, 3], "completed_tasks": [1],
            ]
            for (flag, want) in expected {
                let o = try jsonObject(try await core.call("GET", "/services/\(sid)?\(flag)=true").body)
                let idKey = flag.hasSuffix("states") ? "state_id" : "task_id"
                #expect((o[flag] as? [[String: Any]])?.map { $0[idKey] as! Int } == want, "\(flag)")
                #expect(o.keys.filter { expected.keys.contains($0) } == [flag])
            }
            let all = try await core.call("GET", "/services/\(sid)?active_states=true&completed_states=true&active_tasks=true&completed_tasks=false")
            let allObject = try jsonObject(all.body)
            #expect(allObject["completed_tasks"] == nil)
            #expect(all.text.range(of: #""active_states""#)!.lowerBound < all.text.range(of: #""active_tasks""#)!.lowerBound)

            // Complete the service, then start on it anyway (allowed, §2), then delete it.
            #expect(try await core.call("POST", "/services/\(sid)/end", body: #"{"disposition":4}"#).status == 204)
            #expect(try await core.call("POST", "/services/\(sid)/end").status == 409)
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}").text == #"{"task_id":4}"#)
            let deleted = try await core.call("DELETE", "/services/\(sid)")
            #expect(deleted.status == 200)
            for path in ["/services/\(sid)", "/services/\(sid)/tasks/1", "/services/\(sid)/states/1", "/services/\(sid)/tasks"] {
                let r = try await core.call("GET", path)
                #expect(r.status == 404)
                #expect(r.text == #"{"message":"There are no service found for : \#(sid)","exception":"NotFoundException"}"#)
            }
            #expect(try await core.call("DELETE", "/services/\(sid)").status == 404)
            // A deleted service's id is never issued again.
            #expect(try await core.startService() == sid + 1)
        }
    }

    @Test("Extensions come back byte for byte", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func extensionsByteForByte(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let sid = try await core.startService()
            // Each key and value is kept as sent, whitespace inside a value included; the
            // whitespace between members is not part of any value and is not kept.
            let extensions = #""big":12345678901234567890,"e":1.0e+2,"z":-0,"esc":"caf\u00e9 \/ \"q\"","raw":"café","nested":{"b": [1, 2.50, {"k":null}]},"k\u00e9y":true"#
            let spaced = extensions.replacingOccurrences(of: #","nested":"#, with: " ,\n\t\"nested\" :  ")
            let r = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{ "task_type" : "x" , "# + spaced + " }")
            #expect(r.status == 201)
            let got = try await core.call("GET", "/services/\(sid)/tasks/1")
            #expect(got.text.hasSuffix("}," + extensions + "}"), "\(got.text)")
        }
    }

    @Test("The vendor's own Start Task example, fixed up into valid JSON", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func vendorExample(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let sid = try await core.startService()
            let body = """
                {"task_type":"customer info",
                 "question3":"will be better with cable tv and on-demand video",
                 "Proposal": [
                   {"car type":"cabriolet", "price":25000, "comments":"200 cv, hardtop"},
                   {"car type":"S.U.V.", "price":70000, "comments":"4wd, leather seats"}
                 ]}
                """
            let r = try await core.call("POST", "/services/\(sid)/tasks/start", body: body)
            #expect(r.status == 201)
            #expect(r.text == #"{"task_id":1}"#)
            let task = try await core.call("GET", "/services/\(sid)/tasks/1")
            #expect(task.text.contains(#""question3":"will be better with cable tv and on-demand video","Proposal":["#))
            let proposal = try jsonObject(task.body)["Proposal"] as? [[String: Any]]
            #expect(proposal?.count == 2)
            #expect(proposal?[1]["price"] as? Int == 70000)
        }
    }

    @Test("Tenants never see each other's data", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func tenancy(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let a = [("ContactCenterId", "tenant-a")]
            let b = [("ContactCenterId", "tenant-b")]
            let sid = try await core.startService(tenant: "tenant-a")
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}", headers: a).status == 201)

            for headers in [b, []] {
                for (method, path) in [("GET", "/services/\(sid)"), ("GET", "/services/\(sid)/tasks/1"),
                                       ("GET", "/services/\(sid)/tasks"), ("POST", "/services/\(sid)/tasks/start"),
                                       ("POST", "/services/\(sid)/tasks/1/end"), ("POST", "/services/\(sid)/end"),
                                       ("POST", "/services/\(sid)/states/start"), ("DELETE", "/services/\(sid)")] {
                    let r = try await core.call(method, path, body: method == "POST" ? "{}" : nil, headers: headers)
                    #expect(r.status == 404, "\(method) \(path) as \(headers): \(r)")
                }
            }
            // Nothing the other tenants tried changed tenant A's service.
            let task = try jsonObject(try await core.call("GET", "/services/\(sid)/tasks/1", headers: a).body)
            #expect(task["completed"] == nil)
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}", headers: a).text == #"{"task_id":2}"#)
            // A malformed tenant header is a 400, not a silent default.
            #expect(try await core.call("GET", "/services/\(sid)", headers: [("ContactCenterId", "bad tenant")]).status == 400)
        }
    }

    @Test("Every error has the contract's JSON shape and status", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func errorPaths(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front, configure: { $0.limits = JSONLimits(maxBytes: 4096, maxDepth: 8) }) { core in
            let sid = try await core.startService()
            _ = try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}")
            _ = try await core.call("POST", "/services/\(sid)/tasks/1/end")

            struct Case: Sendable {
                var method: String, path: String, body: String?, contentType: String? = "application/json"
                var status: Int, exception: String
            }
            let cases: [Case] = [
                Case(method: "GET", path: "/services/999", body: nil, status: 404, exception: "NotFoundException"),
                Case(method: "GET", path: "/services/\(sid)/tasks/77", body: nil, status: 404, exception: "NotFoundException"),
                Case(method: "GET", path: "/services/\(sid)/states/77", body: nil, status: 404, exception: "NotFoundException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: #"{"state_id":5}"#, status: 404, exception: "NotFoundException"),
                Case(method: "GET", path: "/nothing/here", body: nil, status: 404, exception: "NotFoundException"),
                Case(method: "GET", path: "/services/\(sid)/states", body: nil, status: 404, exception: "NotFoundException"),
                Case(method: "PUT", path: "/services/\(sid)", body: "{}", status: 405, exception: "MethodNotAllowedException"),
                Case(method: "GET", path: "/services/\(sid)/tasks/start", body: nil, status: 405, exception: "MethodNotAllowedException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/1/end", body: nil, status: 409, exception: "ConflictException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: "{", status: 400, exception: "ValidationException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: "[1]", status: 400, exception: "ValidationException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: #"{"task_id":3}"#, status: 400, exception: "ValidationException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: #"{"session_id":"\#(String(repeating: "s", count: 33))"}"#, status: 400, exception: "ValidationException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: String(repeating: "[", count: 9) + String(repeating: "]", count: 9), status: 400, exception: "ValidationException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: #"{"x":""# + String(repeating: "a", count: 5000) + #""}"#, status: 413, exception: "PayloadTooLargeException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: "{}", contentType: "text/plain", status: 415, exception: "UnsupportedMediaTypeException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: "{}", contentType: nil, status: 415, exception: "UnsupportedMediaTypeException"),
                Case(method: "POST", path: "/services/\(sid)/tasks/start", body: "{}", contentType: "application/json; charset=latin1", status: 415, exception: "UnsupportedMediaTypeException"),
                Case(method: "GET", path: "/services/abc", body: nil, status: 400, exception: "ValidationException"),
                Case(method: "GET", path: "/services/\(sid)/tasks/4294967296", body: nil, status: 400, exception: "ValidationException"),
                Case(method: "GET", path: "/services/\(sid)?active_tasks=yes", body: nil, status: 400, exception: "ValidationException"),
            ]
            for c in cases {
                let r = try await core.call(c.method, c.path, body: c.body, contentType: c.contentType)
                #expect(r.status == c.status, "\(c.method) \(c.path): \(r)")
                let o = try jsonObject(r.body)
                #expect(o["exception"] as? String == c.exception, "\(c.method) \(c.path): \(r)")
                #expect((o["message"] as? String)?.isEmpty == false)
                #expect(o.count == 2)
                #expect(r.header("content-type") == "application/json")
            }
            let notAllowed = try await core.call("DELETE", "/services/\(sid)/tasks/start")
            #expect(notAllowed.header("allow") == "POST")
            // application/json with a UTF-8 charset is fine.
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}", contentType: "Application/JSON; charset=UTF-8").status == 201)
        }
    }

    @Test("Credentials: 401 without or with a wrong bearer token, 2xx with a right one", arguments: CoreHarness.Front.allCases)
    func authentication(front: CoreHarness.Front) async throws {
        try await CoreHarness.with(.memory, front: front, configure: { $0.authTokens = ["s3cret", "other"] }) { core in
            for headers in [[], [("Authorization", "Bearer nope")], [("Authorization", "Basic czNjcmV0")]] {
                let r = try await core.call("POST", "/services/start", body: "{}", headers: headers)
                #expect(r.status == 401)
                #expect(try jsonObject(r.body)["exception"] as? String == "UnauthorizedException")
            }
            #expect(try await core.call("POST", "/services/start", body: "{}", headers: [("Authorization", "Bearer other")]).status == 201)
            #expect(try await core.call("GET", "/services/1", headers: [("authorization", "bearer s3cret")]).status == 200)
        }
    }

    @Test("A refused request changes nothing", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func refusalsChangeNothing(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front, configure: { $0.limits = JSONLimits(maxBytes: 2048, maxDepth: 64) }) { core in
            let sid = try await core.startService(#"{"customer_id":"c"}"#)
            _ = try await core.call("POST", "/services/\(sid)/states/start", body: "{}")
            _ = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"state_id":1}"#)
            _ = try await core.call("POST", "/services/\(sid)/tasks/1/end")
            let snapshot = "/services/\(sid)?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true"
            let before = try await core.call("GET", snapshot).body

            let refused: [(String, String, String?, String?)] = [
                ("POST", "/services/\(sid)/tasks/start", #"{"state_id":9}"#, "application/json"),       // 404 state
                ("POST", "/services/\(sid)/tasks/start", #"{"est_duration":-1}"#, "application/json"),  // 400
                ("POST", "/services/\(sid)/tasks/start", #"{"a":1,"a":2}"#, "application/json"),        // 400 duplicate
                ("POST", "/services/\(sid)/tasks/start", "{}", "text/plain"),                           // 415
                ("POST", "/services/\(sid)/tasks/start", #"{"x":""# + String(repeating: "y", count: 3000) + #""}"#, "application/json"),  // 413
                ("POST", "/services/\(sid)/tasks/1/end", "{}", "application/json"),                     // 409
                ("POST", "/services/\(sid)/states/start", #"{"state_id":1}"#, "application/json"),      // 400
                ("POST", "/services/\(sid)/end", #"{"customer_id":"d"}"#, "application/json"),          // 400 (start-only field)
                ("POST", "/services/\(sid)/tasks/1/end", #"{"disposition":1.5}"#, "application/json"),  // 400 before 409
            ]
            for (method, path, body, type) in refused {
                let r = try await core.call(method, path, body: body, contentType: type)
                #expect(r.status >= 400 && r.status < 500, "\(path) \(body ?? ""): \(r)")
            }
            #expect(try await core.call("GET", snapshot).body == before)
            // Ids continue without a gap: the refused start with an unknown state took no id.
            #expect(try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}").text == #"{"task_id":2}"#)
            #expect(try await core.call("POST", "/services/\(sid)/states/start", body: "{}").text == #"{"state_id":2}"#)
        }
    }

    @Test("Keep-alive and pipelining: answers come back in request order on one connection", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func pipelining(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let sid = try await core.startService()
            let port = core.port
            let base = CoreHarness.base
            let responses = try await detached {
                let client = try RawHTTPClient(port: port)
                var burst: [UInt8] = []
                for i in 0..<20 {
                    burst += RawHTTPClient.request("POST", "\(base)/services/\(sid)/tasks/start", body: #"{"task_type":"t\#(i)"}"#)
                    burst += RawHTTPClient.request("GET", "\(base)/services/\(sid)/tasks/\(i + 1)")
                }
                burst += RawHTTPClient.request("GET", "\(base)/services/\(sid)/tasks/999")
                try client.send(burst)  // one write: the server sees them pipelined
                var out: [RawHTTPClient.Response] = []
                for _ in 0..<41 { out.append(try client.readResponse()) }
                // The connection is still usable afterwards.
                try client.send(RawHTTPClient.request("GET", "\(base)/services/\(sid)"))
                out.append(try client.readResponse())
                return out
            }
            for i in 0..<20 {
                #expect(responses[2 * i].status == 201)
                #expect(responses[2 * i].text == #"{"task_id":\#(i + 1)}"#)
                #expect(responses[2 * i + 1].status == 200)
                #expect(responses[2 * i + 1].text.contains(#""task_type":"t\#(i)""#))
            }
            #expect(responses[40].status == 404)
            #expect(responses[41].status == 200)
        }
    }

    @Test("More pipelined requests than a connection runs at once: reading pauses, every answer comes, in order", arguments: CoreHarness.Front.allCases)
    func pipeliningBackpressure(front: CoreHarness.Front) async throws {
        try await CoreHarness.with(.memory, front: front) { core in
            let sid = try await core.startService()
            let port = core.port
            let count = PipelinedHTTPHandler.maxPipelined * 3 + 7
            let responses = try await detached {
                let client = try RawHTTPClient(port: port)
                var burst: [UInt8] = []
                for i in 0..<count {
                    burst += i % 10 == 0
                        ? RawHTTPClient.request("POST", "\(CoreHarness.base)/services/\(sid)/tasks/start", body: "{}")
                        : RawHTTPClient.request("GET", "\(CoreHarness.base)/services/\(sid)/tasks/\(i / 10 + 1)")
                }
                try client.send(burst)
                return try (0..<count).map { _ in try client.readResponse() }
            }
            for (i, r) in responses.enumerated() {
                if i % 10 == 0 {
                    #expect(r.text == #"{"task_id":\#(i / 10 + 1)}"#)
                } else {
                    // Each GET follows the start of the task it asks for: it must see it.
                    #expect(r.status == 200, "request \(i): \(r)")
                }
            }
        }
    }

    @Test("A body over the limit announced by Content-Length is refused at once and the connection closed", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func oversizedByContentLength(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front, configure: { $0.limits = JSONLimits(maxBytes: 1024, maxDepth: 64) }) { core in
            let sid = try await core.startService()
            let port = core.port
            let (response, closed) = try await detached {
                let client = try RawHTTPClient(port: port)
                // Announce a gigabyte, send only the head: the answer must not wait for the body.
                try client.send("POST \(CoreHarness.base)/services/\(sid)/tasks/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{")
                let r = try client.readResponse()
                return (r, try client.isClosedByPeer())
            }
            #expect(response.status == 413)
            #expect(try jsonObject(response.body)["exception"] as? String == "PayloadTooLargeException")
            #expect(closed)
            #expect(try await core.call("GET", "/services/\(sid)/tasks").text == "[]")
        }
    }

    @Test("A chunked body over the limit is drained and refused; the connection stays usable", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func oversizedChunked(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front, configure: { $0.limits = JSONLimits(maxBytes: 1024, maxDepth: 64) }) { core in
            let sid = try await core.startService()
            let port = core.port
            let (first, second) = try await detached {
                let client = try RawHTTPClient(port: port)
                let chunk = #"{"x":""# + String(repeating: "a", count: 2000) + #""}"#
                let hex = String(chunk.utf8.count, radix: 16)
                try client.send("POST \(CoreHarness.base)/services/\(sid)/tasks/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\(hex)\r\n\(chunk)\r\n0\r\n\r\n")
                let a = try client.readResponse()
                try client.send(RawHTTPClient.request("POST", "\(CoreHarness.base)/services/\(sid)/tasks/start", body: "{}"))
                return (a, try client.readResponse())
            }
            #expect(first.status == 413)
            #expect(second.status == 201)
            #expect(second.text == #"{"task_id":1}"#)
        }
    }

    @Test("Malformed HTTP gets a JSON 400 and a closed connection", arguments: CoreHarness.Front.allCases)
    func malformedHTTP(front: CoreHarness.Front) async throws {
        try await CoreHarness.with(.memory, front: front) { core in
            let port = core.port
            for garbage in ["GARBAGE\r\n\r\n", "POST /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n"] {
                let (r, closed) = try await detached {
                    let client = try RawHTTPClient(port: port)
                    try client.send(garbage)
                    let r = try client.readResponse()
                    return (r, try client.isClosedByPeer())
                }
                #expect(r.status == 400, "\(garbage.debugDescription): \(r)")
                #expect(try jsonObject(r.body)["exception"] as? String == "ValidationException")
                #expect(closed)
            }
        }
    }

    @Test("Expect: 100-continue is answered before the body is sent", arguments: CoreHarness.Front.allCases)
    func expectContinue(front: CoreHarness.Front) async throws {
        try await CoreHarness.with(.memory, front: front) { core in
            let port = core.port
            let (interim, final) = try await detached {
                let client = try RawHTTPClient(port: port)
                try client.send("POST \(CoreHarness.base)/services/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
                let interim = try client.readResponse()
                try client.send("{}")
                return (interim, try client.readResponse())
            }
            #expect(interim.status == 100)
            #expect(final.status == 201)
        }
    }

    @Test("A service whose task counter reached 2,147,483,647 refuses the next start with 409", arguments: CoreHarness.Storage.durable, CoreHarness.Front.allCases)
    func idSpaceExhausted(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let sid = try await core.startService()
            // Set the counter behind the store's back, as an operator could.
            try await core.setCounters(serviceID: sid, lastTaskID: 2147483646, lastStateID: 2147483647)
            let last = try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}")
            #expect(last.text == #"{"task_id":2147483647}"#)
            for path in ["/services/\(sid)/tasks/start", "/services/\(sid)/states/start"] {
                let r = try await core.call("POST", path, body: "{}")
                #expect(r.status == 409)
                #expect(try jsonObject(r.body)["exception"] as? String == "IdSpaceExhaustedException")
            }
            #expect(try await core.call("GET", "/services/\(sid)/tasks/2147483647").status == 200)
        }
    }

    @Test("Many clients starting tasks on one service at once get distinct, gap-free ids", arguments: CoreHarness.Storage.durable + [.memory], CoreHarness.Front.allCases)
    func concurrentStarts(storage: CoreHarness.Storage, front: CoreHarness.Front) async throws {
        try await CoreHarness.with(storage, front: front) { core in
            let sid = try await core.startService()
            let port = core.port
            let clients = 16, perClient = 25
            let ids = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for c in 0..<clients {
                    group.addTask {
                        try await detached {
                            let client = try RawHTTPClient(port: port)
                            var ids: [Int64] = []
                            for i in 0..<perClient {
                                try client.send(RawHTTPClient.request("POST", "\(CoreHarness.base)/services/\(sid)/tasks/start",
                                                                      body: #"{"client":\#(c),"i":\#(i)}"#))
                                let r = try client.readResponse()
                                guard r.status == 201, let id = try jsonInt(r.body, "task_id") else {
                                    throw RawHTTPClient.Failure(description: "start failed: \(r)")
                                }
                                ids.append(id)
                            }
                            return ids
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(ids.sorted() == Array(1...Int64(clients * perClient)))
            // Each id holds the body its client sent (no cross-wiring).
            let list = try JSONSerialization.jsonObject(with: Data(try await core.call("GET", "/services/\(sid)/tasks").body)) as! [[String: Any]]
            #expect(list.count == clients * perClient)
            #expect(Set(list.map { "\($0["client"]!)-\($0["i"]!)" }).count == clients * perClient)
        }
    }
}
