import ContextModel
import Foundation
import HTTPServing
import NIOCore
import Testing
@testable import TaskCore

/// `Idempotency-Key` on the core's REST API (README, "Exactly once"), over real sockets on
/// both durable stores, and the in-flight rule on the service itself.
@Suite("Idempotency keys over HTTP")
struct IdempotencyHTTPTests {
    @Test("A retried start with its key: one task, the first answer again marked as a replay; another body under the key is 422",
          arguments: CoreHarness.Storage.durable)
    func replayAndMismatch(storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let sid = try await core.startService()
            let key = [("Idempotency-Key", "\"ivr-7-call-42\"")]
            let first = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"q":1}"#, headers: key)
            #expect(first.status == 201)
            #expect(first.header("idempotent-replayed") == nil)
            let again = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"q":1}"#, headers: key)
            #expect(again.status == 201)
            #expect(again.text == first.text)
            #expect(again.header("location") == first.header("location"))
            #expect(again.header("idempotent-replayed") == "true")
            // Quoted or bare: the same key.
            let bare = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"q":1}"#,
                                           headers: [("Idempotency-Key", "ivr-7-call-42")])
            #expect(bare.header("idempotent-replayed") == "true")
            let other = try await core.call("POST", "/services/\(sid)/tasks/start", body: #"{"q":2}"#, headers: key)
            #expect(other.status == 422)
            #expect(try jsonObject(other.body)["exception"] as? String == "IdempotencyKeyMismatchException")
            let otherRoute = try await core.call("POST", "/services/\(sid)/states/start", body: #"{"q":1}"#, headers: key)
            #expect(otherRoute.status == 422)
            // Another tenant's key of the same text is its own.
            let tenantB = try await core.startService(tenant: "b")
            let b = try await core.call("POST", "/services/\(tenantB)/tasks/start", body: #"{"q":1}"#,
                                        headers: key + [("ContactCenterId", "b")])
            #expect(b.status == 201)
            #expect(b.header("idempotent-replayed") == nil)
            let list = try await core.call("GET", "/services/\(sid)/tasks")
            #expect((try JSONSerialization.jsonObject(with: Data(list.body)) as! [Any]).count == 1)
        }
    }

    @Test("A refusal is kept under its key: the retry gets it again even once the call could succeed",
          arguments: CoreHarness.Storage.durable)
    func refusalRemembered(storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let key = [("Idempotency-Key", "k-404")]
            let missing = try await core.call("POST", "/services/1/tasks/start", body: "{}", headers: key)
            #expect(missing.status == 404)
            #expect(try await core.startService() == 1)
            let again = try await core.call("POST", "/services/1/tasks/start", body: "{}", headers: key)
            #expect(again.status == 404)
            #expect(again.text == missing.text)
            #expect(again.header("idempotent-replayed") == "true")
        }
    }

    @Test("Bad keys are refused with 400 and change nothing; a key on a read is ignored", arguments: [
        String(repeating: "k", count: 256), "\"unterminated", "caf\u{e9}", "\"a\"b\"", "",
    ])
    func badKeys(key: String) async throws {
        try await CoreHarness.with(.memory) { core in
            let sid = try await core.startService()
            let r = try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}", headers: [("Idempotency-Key", key)])
            #expect(r.status == 400, "\(key): \(r)")
            #expect(try jsonObject(r.body)["exception"] as? String == "ValidationException")
            let read = try await core.call("GET", "/services/\(sid)/tasks", headers: [("Idempotency-Key", "fine")])
            #expect(read.status == 200)
            #expect(read.text == "[]")
            #expect(read.header("idempotent-replayed") == nil)
        }
    }

    @Test("Idempotency-Key twice in one request is a 400")
    func repeatedKey() async throws {
        try await CoreHarness.with(.memory) { core in
            let sid = try await core.startService()
            let r = try await core.call("POST", "/services/\(sid)/tasks/start", body: "{}",
                                        headers: [("Idempotency-Key", "a"), ("Idempotency-Key", "b")])
            #expect(r.status == 400)
        }
    }

    @Test("A call whose key another call is running gets 409 at once; after it, the key replays")
    func inFlight() async throws {
        let store = BatchStorageFailureTests.FailingStore()
        let service = ContextService(store: store)
        _ = await service.handle(CoreRequest(method: "POST", target: "/genesys/1/cs/services/start"))
        store.locked { store.delay = Duration.milliseconds(300) }
        func start() async -> CoreResponse {
            await service.handle(CoreRequest(method: "POST", target: "/genesys/1/cs/services/1/tasks/start",
                                             contentType: "application/json", body: Array("{}".utf8), idempotencyKey: "slow"))
        }
        async let first = start()
        try await Task.sleep(for: .milliseconds(100))
        let second = await start()
        #expect(second.status == 409)
        #expect(try jsonObject(second.body)["exception"] as? String == "IdempotencyKeyInProgressException")
        let firstAnswer = await first
        #expect(firstAnswer.status == 201)
        store.locked { store.delay = Duration.zero }
        let third = await start()
        #expect(third.status == 201)
        #expect(third.isReplay)
        #expect(third.body == firstAnswer.body)
    }

    @Test("Batch items carry their keys: a retried batch replays each item, flagged in the result",
          arguments: CoreHarness.Storage.durable)
    func batchItems(storage: CoreHarness.Storage) async throws {
        try await CoreHarness.with(storage) { core in
            let sid = try await core.startService()
            let items = (0..<5).map { i in
                BatchItem(method: .post, target: "/services/\(sid)/tasks/start", body: Array(#"{"i":\#(i)}"#.utf8),
                          idempotencyKey: "batch-\(i)", keyMadeByGateway: i % 2 == 0)
            }
            let (_, first) = try await core.batch(items)
            #expect(first.map(\.status) == Array(repeating: 201, count: 5))
            #expect(first.allSatisfy { !$0.replayed })
            let (_, again) = try await core.batch(items + [BatchItem(method: .post, target: "/services/\(sid)/tasks/start",
                                                                      body: Array("{}".utf8))])
            let replayedBodies = Array(again.prefix(5)).map(\.body)
            #expect(replayedBodies == first.map(\.body))
            let allReplayed = again.prefix(5).allSatisfy { $0.replayed }
            #expect(allReplayed)
            #expect(again[5].status == 201 && !again[5].replayed)
            #expect(String(buffer: again[5].body) == #"{"task_id":6}"#)
        }
    }
}

@Suite("Idempotency fingerprints")
struct FingerprintTests {
    static var routes: [RESTRoute] {
        var include = ServiceInclude()
        include.activeTasks = true
        var filter = TaskFilter()
        filter.taskTypes = ["a b"]
        var routes: [RESTRoute] = [.startService, .queryService(serviceID: 3, include: include),
                                   .queryTasks(serviceID: 3, filter: filter), .queryTask(serviceID: 1, taskID: 9)]
        for sid: Int64 in [1, 9, 10, 21456878, Int64.max] {
            routes += [.endService(serviceID: sid), .deleteService(serviceID: sid), .startState(serviceID: sid),
                       .startTask(serviceID: sid)]
            for id: Int64 in [1, 10, 99, 2147483647] {
                routes += [.endState(serviceID: sid, stateID: id), .endTask(serviceID: sid, taskID: id)]
            }
        }
        return routes
    }

    @Test("A fingerprint starts with method NUL path NUL, the route's own text, written without building it",
          arguments: routes)
    func fingerprintPrefixIsTheRouteText(route: RESTRoute) {
        var bytes: [UInt8] = []
        ContextService.withFingerprintPrefix(route) { bytes = Array($0) }
        #expect(bytes == Array(route.method.utf8) + [0] + Array(route.target(basePath: "").utf8) + [0])
    }
}
