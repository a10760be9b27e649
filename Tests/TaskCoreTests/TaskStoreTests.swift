import ContextModel
import Foundation
import GRDB
import Testing
@testable import TaskCore

/// The `TaskStore` contract, run against every implementation.
@Suite("Task store conformance")
struct TaskStoreTests {
    enum Kind: String, CaseIterable, Sendable { case sqlite, memory }

    /// A store on a fresh file (or in memory), closed and removed afterwards.
    static func with(_ kind: Kind, _ body: (any TaskStore, String) async throws -> Void) async throws {
        let directory = try makeTemporaryDirectory()
        let path = directory + "/cs.sqlite"
        let store: any TaskStore = kind == .sqlite ? try SQLiteTaskStore(.init(path: path)) : InMemoryTaskStore()
        do {
            try await body(store, path)
        } catch {
            try? await store.close()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        try await store.close()
        try? FileManager.default.removeItem(atPath: directory)
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
        #expect(migrations == ["v1"])
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
