import ContextModel
import Foundation
import GRDB
import Testing
@testable import TaskCore

/// The `TaskStore` contract, run against every implementation.
@Suite("Task store conformance")
struct TaskStoreTests {
    enum Kind: String, Sendable {
        case sqlite, memory, postgres
        /// Every store; PostgreSQL when the test command started a cluster (CI always does:
        /// `postgresConfiguredInCI`).
        static var allCases: [Kind] { PostgresTestServer.isConfigured ? [.sqlite, .memory, .postgres] : [.sqlite, .memory] }
        static var shared: [Kind] { PostgresTestServer.isConfigured ? [.sqlite, .postgres] : [.sqlite] }
    }

    /// Where a store lives, so that a second instance can open the same one.
    enum Location: Sendable {
        case file(String)
        case database(PostgresTaskStore.Configuration)
        case memory

        func open() async throws -> any TaskStore {
            switch self {
            case .file(let path): try SQLiteTaskStore(.init(path: path))
            case .database(let config): try await PostgresTaskStore.open(config)
            case .memory: InMemoryTaskStore()
            }
        }
    }

    /// A store on a fresh file, a fresh database, or in memory, closed and removed afterwards.
    static func with(_ kind: Kind, _ body: (any TaskStore, Location) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        let location: Location
        switch kind {
        case .sqlite: location = .file(directory + "/cs.sqlite")
        case .memory: location = .memory
        case .postgres: location = .database(try await PostgresTestServer.createDatabase())
        }
        let store = try await location.open()
        func cleanUp() async {
            try? FileManager.default.removeItem(atPath: directory)
            if case .database(let config) = location { await PostgresTestServer.dropDatabase(config.database) }
        }
        do {
            try await body(store, location)
        } catch {
            try? await store.close()
            await cleanUp()
            throw error
        }
        try await store.close()
        await cleanUp()
    }

    @Test("CI runs the PostgreSQL variants: the test command always starts a cluster")
    func postgresConfiguredInCI() {
        if ProcessInfo.processInfo.environment["CI"] != nil {
            #expect(PostgresTestServer.isConfigured, "CS_TEST_POSTGRES is not set: gateway/scripts/test.sh starts the cluster")
        }
    }

    @Test("Two instances on one store (two cores) starting tasks on one service at once: distinct, gap-free ids, each with its own body",
          arguments: Kind.shared)
    func twoInstancesOneStore(kind: Kind) async throws {
        try await Self.with(kind) { first, location in
            let second = try await location.open()
            #expect(second.identity == first.identity, "one store, one identity, whoever opens it")
            _ = try await first.write(.startService(tenant: "t", Self.resource("s")))
            let perInstance = 200
            let results = try await withThrowingTaskGroup(of: [(Int64, String)].self) { group in
                for (n, store) in [first, second].enumerated() {
                    for worker in 0..<4 {
                        group.addTask {
                            var out: [(Int64, String)] = []
                            for i in 0..<(perInstance / 4) {
                                let marker = "\(n)-\(worker)-\(i)"
                                // Single commands and groups of five, as single calls and batches arrive.
                                if i % 2 == 0 {
                                    if case .created(let id) = try await store.write(.startTask(tenant: "t", serviceID: 1, Self.resource(marker))) {
                                        out.append((id, marker))
                                    }
                                } else {
                                    let group = (0..<5).map { k in WriteCommand.startTask(tenant: "t", serviceID: 1, Self.resource(marker + "." + String(k))) }
                                    for (k, r) in try await store.write(group).enumerated() {
                                        if case .created(let id) = try r.get() { out.append((id, marker + "." + String(k))) }
                                    }
                                }
                            }
                            return out
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            let expected = 2 * 4 * ((perInstance / 4 + 1) / 2 + (perInstance / 4 / 2) * 5)
            #expect(results.count == expected)
            #expect(results.map(\.0).sorted() == Array(1...Int64(expected)), "distinct and gap-free")
            let stored = try await second.tasks(tenant: "t", serviceID: 1, filter: TaskFilter())
            let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, String(decoding: $0.extensions, as: UTF8.self)) })
            for (id, marker) in results {
                #expect(byID[id] == #""marker":"\#(marker)""#)
            }
            // Services too: both instances allocate from one counter.
            let services = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for store in [first, second] {
                    group.addTask {
                        var ids: [Int64] = []
                        for _ in 0..<20 {
                            if case .created(let id) = try await store.write(.startService(tenant: "t", Self.resource("s"))) { ids.append(id) }
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(services.sorted() == Array(2...41))
            try await second.close()
        }
    }

    @Test("A store's identity is made once and read back on every open; two stores differ", arguments: Kind.shared)
    func identity(kind: Kind) async throws {
        try await Self.with(kind) { store, location in
            #expect(!store.identity.id.isEmpty)
            #expect(store.identity.engine == kind.rawValue)
            let again = try await location.open()
            #expect(again.identity == store.identity)
            try await again.close()
            try await Self.with(kind) { other, _ in
                #expect(other.identity != store.identity)
            }
        }
    }

    @Test("The 32-bit id space: the last id is issued, the next start is refused and changes nothing", arguments: Kind.allCases)
    func idSpace(kind: Kind) async throws {
        try await Self.with(kind) { store, location in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            let sql = "UPDATE services SET last_task_id = 2147483646, last_state_id = 2147483647 WHERE service_id = 1"
            switch location {
            case .file(let path):
                let db = try DatabaseQueue(path: path)
                try await db.write { try $0.execute(sql: sql) }
                try db.close()
            case .database(let config):
                try await PostgresTestServer.execute(sql, database: config.database)
            case .memory:
                (store as! InMemoryTaskStore).setCounters(serviceID: 1, lastStateID: 2147483647, lastTaskID: 2147483646)
            }
            #expect(try await store.write(.startTask(tenant: "", serviceID: 1, Self.resource("last"))) == .created(2147483647))
            let results = try await store.write([
                .startTask(tenant: "", serviceID: 1, Self.resource("over")),
                .startState(tenant: "", serviceID: 1, Self.resource("over")),
                .startTask(tenant: "x", serviceID: 1, Self.resource("other tenant")),
            ])
            #expect(results[0].error?.exception == "IdSpaceExhaustedException")
            #expect(results[1].error?.exception == "IdSpaceExhaustedException")
            #expect(results[2].error?.status == 404)
            #expect(try await store.tasks(tenant: "", serviceID: 1, filter: TaskFilter()).map(\.id) == [2147483647])
        }
    }

    static func resource(_ marker: String, stateID: Int64? = nil, type: String? = nil) -> NewResource {
        NewResource(typeText: type, stateID: stateID, head: Array(#""task_type":"\#(type ?? "")""#.utf8),
                    started: Array(#""timestamp":"2017-04-27T10:18:00.000Z""#.utf8),
                    extensions: Array(#""marker":"\#(marker)""#.utf8))
    }

    @Test("Ids: services global from 1, states and tasks per service from 1", arguments: Kind.allCases)
    func idScopes(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            let s1 = try await store.write(.startService(tenant: "", Self.resource("s1")))
            let s2 = try await store.write(.startService(tenant: "t", Self.resource("s2")))
            #expect(s1 == .created(1))
            #expect(s2 == .created(2))
            for sid: Int64 in [1, 2] {
                let tenant = sid == 1 ? "" : "t"
                #expect(try await store.write(.startState(tenant: tenant, serviceID: sid, Self.resource("a"))) == .created(1))
                #expect(try await store.write(.startTask(tenant: tenant, serviceID: sid, Self.resource("a"))) == .created(1))
                #expect(try await store.write(.startTask(tenant: tenant, serviceID: sid, Self.resource("b"))) == .created(2))
                #expect(try await store.write(.startState(tenant: tenant, serviceID: sid, Self.resource("b"))) == .created(2))
            }
        }
    }

    @Test("A batch is applied in order; a refused item gets its own error and spoils nothing", arguments: Kind.allCases)
    func batchIsolation(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            let results = try await store.write([
                .startTask(tenant: "", serviceID: 1, Self.resource("t1")),
                .startTask(tenant: "", serviceID: 1, Self.resource("bad", stateID: 9)),   // no such state
                .startTask(tenant: "", serviceID: 1, Self.resource("t2")),
                .endTask(tenant: "", serviceID: 1, taskID: 1, completed: Array(#""timestamp":"x""#.utf8)),
                .endTask(tenant: "", serviceID: 1, taskID: 1, completed: []),               // already completed
                .startTask(tenant: "", serviceID: 77, Self.resource("nope")),               // no such service
                .startTask(tenant: "other", serviceID: 1, Self.resource("nope")),           // other tenant
                .startState(tenant: "", serviceID: 1, Self.resource("st")),
                .startTask(tenant: "", serviceID: 1, Self.resource("t3", stateID: 1)),      // the state just made
            ])
            #expect(results.count == 9)
            #expect(try results[0].get() == .created(1))
            #expect(results[1].error?.status == 404)
            #expect(results[1].error?.message == "There are no state found for : 9")
            #expect(try results[2].get() == .created(2), "the refused start took no id")
            #expect(try results[3].get() == .done)
            #expect(results[4].error?.exception == "ConflictException")
            #expect(results[5].error?.message == "There are no service found for : 77")
            #expect(results[6].error?.status == 404)
            #expect(try results[7].get() == .created(1))
            #expect(try results[8].get() == .created(3))

            let tasks = try await store.tasks(tenant: "", serviceID: 1, filter: TaskFilter())
            #expect(tasks.map(\.id) == [1, 2, 3])
            #expect(tasks.map { String(decoding: $0.extensions, as: UTF8.self) } == [#""marker":"t1""#, #""marker":"t2""#, #""marker":"t3""#])
            #expect(tasks[0].completed == Array(#""timestamp":"x""#.utf8))
            #expect(tasks[1].completed == nil)
        }
    }

    @Test("Filters: status, state and type text", arguments: Kind.allCases)
    func filters(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            _ = try await store.write(.startState(tenant: "", serviceID: 1, Self.resource("st")))
            _ = try await store.write([
                .startTask(tenant: "", serviceID: 1, Self.resource("1", type: "a")),
                .startTask(tenant: "", serviceID: 1, Self.resource("2", stateID: 1, type: "b")),
                .startTask(tenant: "", serviceID: 1, Self.resource("3", stateID: 1, type: "5")),
                .startTask(tenant: "", serviceID: 1, Self.resource("4")),
                .endTask(tenant: "", serviceID: 1, taskID: 2, completed: []),
            ])
            func ids(_ configure: (inout TaskFilter) -> Void) async throws -> [Int64] {
                var f = TaskFilter()
                configure(&f)
                return try await store.tasks(tenant: "", serviceID: 1, filter: f).map(\.id)
            }
            #expect(try await ids { _ in } == [1, 2, 3, 4])
            #expect(try await ids { $0.status = .active } == [1, 3, 4])
            #expect(try await ids { $0.status = .completed } == [2])
            #expect(try await ids { $0.stateID = 1 } == [2, 3])
            #expect(try await ids { $0.taskTypes = ["a", "5"] } == [1, 3])
            #expect(try await ids { $0.taskTypes = ["b"]; $0.status = .active } == [])
            let state = try await store.state(tenant: "", serviceID: 1, stateID: 1, include: {
                var i = StateInclude(); i.activeTasks = true; i.completedTasks = true; return i
            }())
            #expect(state.children.map(\.name) == ["active_tasks", "completed_tasks"])
            #expect(state.children.map { $0.records.map(\.id) } == [[3], [2]])
        }
    }

    @Test("Delete removes a service with its states and tasks; its id is never reused", arguments: Kind.allCases)
    func delete(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            _ = try await store.write(.startTask(tenant: "", serviceID: 1, Self.resource("t")))
            await #expect(throws: ContextError.notFound(.service, 1)) {
                try await store.write(.deleteService(tenant: "x", serviceID: 1))
            }
            #expect(try await store.write(.deleteService(tenant: "", serviceID: 1)) == .done)
            await #expect(throws: ContextError.notFound(.service, 1)) {
                try await store.task(tenant: "", serviceID: 1, taskID: 1)
            }
            await #expect(throws: ContextError.notFound(.service, 1)) {
                try await store.write(.deleteService(tenant: "", serviceID: 1))
            }
            #expect(try await store.write(.startService(tenant: "", Self.resource("s2"))) == .created(2))
            let tasks = try await store.tasks(tenant: "", serviceID: 2, filter: TaskFilter())
            #expect(tasks.isEmpty)
        }
    }

    static func claim(_ key: String, tenant: String = "", fingerprint: UInt8 = 1, lifetime: Int64 = 3600) -> IdempotencyClaim {
        IdempotencyClaim(tenant: tenant, key: key, fingerprint: Array(repeating: fingerprint, count: 32), lifetimeSeconds: lifetime)
    }

    @Test("Idempotency keys: a replay writes nothing and answers the first outcome, refusals included; another request under the key is 422; tenants have their own keys",
          arguments: Kind.allCases)
    func idempotencyKeys(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            let start = WriteCommand.startTask(tenant: "", serviceID: 1, Self.resource("t"))
            let first = try await store.write([WriteRequest(start, claim: Self.claim("k1"))])
            #expect(first == [WriteReply(.success(.created(1)))])
            // The same key again, alone and twice in one group: replays, nothing written.
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("k1"))]) == [WriteReply(.success(.created(1)), replayed: true)])
            let group = try await store.write([
                WriteRequest(start, claim: Self.claim("k1")),
                WriteRequest(start, claim: Self.claim("k2")),
                WriteRequest(start, claim: Self.claim("k2")),
                WriteRequest(start, claim: Self.claim("k1", fingerprint: 9)),
                WriteRequest(.startTask(tenant: "", serviceID: 77, Self.resource("x")), claim: Self.claim("k3")),
                WriteRequest(start),
            ])
            #expect(group == [
                WriteReply(.success(.created(1)), replayed: true),
                WriteReply(.success(.created(2))),
                WriteReply(.success(.created(2)), replayed: true),
                WriteReply(.failure(.idempotencyKeyMismatch())),
                WriteReply(.failure(.notFound(.service, 77))),
                WriteReply(.success(.created(3))),
            ])
            // A refusal is kept too: the same call later gets it again, even once it could succeed.
            _ = try await store.write(.startService(tenant: "", Self.resource("2")))
            #expect(try await store.write([WriteRequest(.startTask(tenant: "", serviceID: 77, Self.resource("x")), claim: Self.claim("k3"))])
                    == [WriteReply(.failure(.notFound(.service, 77)), replayed: true)])
            // Ends replay as done.
            let end = WriteCommand.endTask(tenant: "", serviceID: 1, taskID: 1, completed: [])
            #expect(try await store.write([WriteRequest(end, claim: Self.claim("e"))]) == [WriteReply(.success(.done))])
            #expect(try await store.write([WriteRequest(end, claim: Self.claim("e"))]) == [WriteReply(.success(.done), replayed: true)])
            // Another tenant's "k1" is another key.
            _ = try await store.write(.startService(tenant: "b", Self.resource("b")))
            let other = try await store.write([WriteRequest(.startTask(tenant: "b", serviceID: 3, Self.resource("b")),
                                                            claim: Self.claim("k1", tenant: "b"))])
            #expect(other == [WriteReply(.success(.created(1)))])
            #expect(try await store.tasks(tenant: "", serviceID: 1, filter: TaskFilter()).map(\.id) == [1, 2, 3])
        }
    }

    @Test("A gateway's fresh key is stored without a look-up; its resend (not fresh) replays it", arguments: Kind.allCases)
    func freshKeys(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            let start = WriteCommand.startTask(tenant: "", serviceID: 1, Self.resource("t"))
            var fresh = Self.claim("gw-1-0-1")
            fresh.fresh = true
            var fresh2 = Self.claim("gw-1-0-2")
            fresh2.fresh = true
            #expect(try await store.write([WriteRequest(start, claim: fresh), WriteRequest(start, claim: fresh2), WriteRequest(start)])
                    == [WriteReply(.success(.created(1))), WriteReply(.success(.created(2))), WriteReply(.success(.created(3)))])
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("gw-1-0-2")), WriteRequest(start, claim: Self.claim("gw-1-0-1"))])
                    == [WriteReply(.success(.created(2)), replayed: true), WriteReply(.success(.created(1)), replayed: true)])
            #expect(try await store.tasks(tenant: "", serviceID: 1, filter: TaskFilter()).count == 3)
        }
    }

    @Test("An expired key is free again, and the purge removes it", arguments: Kind.allCases)
    func idempotencyExpiry(kind: Kind) async throws {
        try await Self.with(kind) { store, _ in
            _ = try await store.write(.startService(tenant: "", Self.resource("s")))
            let start = WriteCommand.startTask(tenant: "", serviceID: 1, Self.resource("t"))
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("short", lifetime: 1))]) == [WriteReply(.success(.created(1)))])
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("long"))]) == [WriteReply(.success(.created(2)))])
            try await Task.sleep(for: .milliseconds(1100))
            // Expired: the key runs again (a new task), under a new fingerprint even.
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("short", fingerprint: 5, lifetime: 1))]) == [WriteReply(.success(.created(3)))])
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await store.purgeExpiredKeys(limit: 10) == 1, "the expired key, not the live one")
            #expect(try await store.write([WriteRequest(start, claim: Self.claim("long"))]) == [WriteReply(.success(.created(2)), replayed: true)])
        }
    }

    @Test("The same key from two instances (two cores) at once: written once, the other call replays it",
          arguments: Kind.shared)
    func idempotencyAcrossInstances(kind: Kind) async throws {
        try await Self.with(kind) { first, location in
            let second = try await location.open()
            _ = try await first.write(.startService(tenant: "", Self.resource("s")))
            let start = WriteRequest(.startTask(tenant: "", serviceID: 1, Self.resource("t")), claim: Self.claim("same"))
            let replies = try await withThrowingTaskGroup(of: [WriteReply].self) { group in
                for n in 0..<20 {
                    let store = n % 2 == 0 ? first : second
                    group.addTask { try await store.write(n % 4 < 2 ? [start] : [start, WriteRequest(.startService(tenant: "", Self.resource("x")))]) }
                }
                return try await group.reduce(into: []) { $0.append($1[0]) }
            }
            #expect(replies.filter { !$0.replayed }.count == 1)
            #expect(replies.allSatisfy { $0.result == .success(.created(1)) })
            #expect(try await first.tasks(tenant: "", serviceID: 1, filter: TaskFilter()).count == 1)
            try await second.close()
        }
    }

    @Test("The PostgreSQL schema is versioned and every migration applied once, also when two cores open it at once")
    func postgresSchema() async throws {
        guard PostgresTestServer.isConfigured else { return }
        let config = try await PostgresTestServer.createDatabase()
        do {
            async let a = PostgresTaskStore.open(config)
            async let b = PostgresTaskStore.open(config)
            let (first, second) = try await (a, b)
            #expect(first.identity == second.identity)
            let versions = try await PostgresTestServer.rows("SELECT version::text FROM cs_schema_migrations ORDER BY version",
                                                             database: config.database)
            #expect(versions == PostgresTaskStore.migrations.map { [String($0.version)] })
            let stores = try await PostgresTestServer.rows("SELECT store_id FROM cs_store", database: config.database)
            #expect(stores == [[first.identity.id]])
            try await first.close()
            try await second.close()
        } catch {
            await PostgresTestServer.dropDatabase(config.database)
            throw error
        }
        await PostgresTestServer.dropDatabase(config.database)
    }

    @Test("The SQLite file keeps everything across a close and reopen; the schema is versioned")
    func reopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cs.sqlite"
        var store = try SQLiteTaskStore(.init(path: path))
        _ = try await store.write(.startService(tenant: "t", Self.resource("s")))
        _ = try await store.write(.startTask(tenant: "t", serviceID: 1, Self.resource("kept")))
        try await store.close()

        store = try SQLiteTaskStore(.init(path: path))
        let task = try await store.task(tenant: "t", serviceID: 1, taskID: 1)
        #expect(task.extensions == Array(#""marker":"kept""#.utf8))
        #expect(try await store.write(.startTask(tenant: "t", serviceID: 1, Self.resource("next"))) == .created(2))
        try await store.close()

        let db = try DatabaseQueue(path: path)
        let (migrations, journal, synchronous) = try await db.read { db in
            (try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"),
             try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             try Int.fetchOne(db, sql: "PRAGMA synchronous"))
        }
        #expect(migrations == ["v1", "v2: store identity", "v3: idempotency keys"])
        #expect(journal == "wal")
        _ = synchronous  // per connection; the store's own setting is checked below
        try db.close()
    }

    @Test("synchronous=FULL is the default on the store's connections", arguments: SQLiteTaskStore.Configuration.Synchronous.allCases)
    func synchronousSetting(mode: SQLiteTaskStore.Configuration.Synchronous) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(SQLiteTaskStore.Configuration(path: "x").synchronous == .full)
        let store = try SQLiteTaskStore(.init(path: directory + "/cs.sqlite", synchronous: mode))
        let value = try await store.pragma("synchronous")
        #expect(value == ["off": 0, "normal": 1, "full": 2][mode.rawValue])
        try await store.close()
    }
}

extension Result where Failure == ContextError {
    var error: ContextError? {
        if case .failure(let e) = self { return e }
        return nil
    }
}
