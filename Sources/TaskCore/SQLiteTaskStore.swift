import ContextModel
import Foundation
internal import GRDB

/// The embedded store: one SQLite file in WAL mode, written by one writer (GRDB serialises
/// writes), read by a pool of readers. Each `write` call is one transaction, so a batch of
/// commands costs one commit and, with `synchronous=FULL`, one fsync of the WAL.
public final class SQLiteTaskStore: TaskStore {
    public struct Configuration: Sendable {
        /// `PRAGMA synchronous`. FULL (the default) fsyncs the WAL at every commit: an
        /// acknowledged write survives power loss. NORMAL survives a process crash only.
        public enum Synchronous: String, Sendable, CaseIterable { case full, normal, off }

        public var path: String
        public var synchronous: Synchronous = .full
        /// Concurrent readers (GRDB's default is 5).
        public var maximumReaderCount: Int = 4
        /// How long a writer waits for a lock held by another process on the same file.
        public var busyTimeoutSeconds: Double = 5

        public init(path: String, synchronous: Synchronous = .full) {
            self.path = path
            self.synchronous = synchronous
        }
    }

    private let pool: DatabasePool
    public let identity: StoreIdentity
    /// Commits on the writer connection (`committedTransactions`).
    let commits = CommitCounter()

    /// Throws a `TaskStoreError` (never one of GRDB's) when the file cannot be opened or
    /// migrated.
    public init(_ configuration: Configuration) throws {
        let opened = try Self.mappingErrorsSync { try Self.open(configuration) }
        pool = opened.pool
        identity = opened.identity
        pool.add(transactionObserver: commits, extent: .databaseLifetime)
    }

    private static func open(_ configuration: Configuration) throws -> (pool: DatabasePool, identity: StoreIdentity) {
        var config = GRDB.Configuration()
        config.maximumReaderCount = configuration.maximumReaderCount
        config.busyMode = .timeout(configuration.busyTimeoutSeconds)
        let directory = (configuration.path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let pool = try DatabasePool(path: configuration.path, configuration: config)
        // Set on the one writer connection, after the pool is open: GRDB's WAL set-up runs
        // after `prepareDatabase` and sets synchronous=NORMAL, which would silently trade
        // away power-loss durability (caught by TaskStoreTests.synchronousSetting).
        let synchronous = configuration.synchronous.rawValue.uppercased()
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        try migrator.migrate(pool)
        let id = try pool.read { db in try String.fetchOne(db, sql: "SELECT store_id FROM cs_store") }
        guard let id else { throw TaskStoreError(.failed, "cs_store has no row") }
        return (pool, StoreIdentity(id: id, engine: "sqlite"))
    }

    /// The schema, versioned by GRDB's migrator (table `grdb_migrations`). Add a migration
    /// for every change; never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            // AUTOINCREMENT: a deleted service's id is never issued again.
            try db.execute(sql: """
                CREATE TABLE services (
                    service_id INTEGER PRIMARY KEY AUTOINCREMENT,
                    tenant TEXT NOT NULL,
                    type_text TEXT,
                    head BLOB NOT NULL,
                    started BLOB NOT NULL,
                    completed BLOB,
                    ext BLOB NOT NULL,
                    last_state_id INTEGER NOT NULL DEFAULT 0,
                    last_task_id INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE states (
                    service_id INTEGER NOT NULL,
                    state_id INTEGER NOT NULL,
                    type_text TEXT,
                    head BLOB NOT NULL,
                    started BLOB NOT NULL,
                    completed BLOB,
                    ext BLOB NOT NULL,
                    PRIMARY KEY (service_id, state_id)
                );
                CREATE TABLE tasks (
                    service_id INTEGER NOT NULL,
                    task_id INTEGER NOT NULL,
                    state_id INTEGER,
                    type_text TEXT,
                    head BLOB NOT NULL,
                    started BLOB NOT NULL,
                    completed BLOB,
                    ext BLOB NOT NULL,
                    PRIMARY KEY (service_id, task_id)
                );
                CREATE INDEX tasks_by_state ON tasks (service_id, state_id);
                """)
        }
        m.registerMigration("v2: store identity") { db in
            // Who this file is, made once: a gateway refuses to spread calls over cores whose
            // stores differ (two files would hand out the same ids).
            try db.execute(sql: "CREATE TABLE cs_store (store_id TEXT NOT NULL)")
            try db.execute(sql: "INSERT INTO cs_store (store_id) VALUES (?)", arguments: [UUID().uuidString.lowercased()])
        }
        m.registerMigration("v3: idempotency keys") { db in
            // (tenant, key) → the request's fingerprint and the outcome, written in the same
            // transaction as the write (README, "Exactly once").
            try db.execute(sql: """
                CREATE TABLE cs_keys (
                    tenant TEXT NOT NULL,
                    key TEXT NOT NULL,
                    fingerprint BLOB NOT NULL,
                    kind INTEGER NOT NULL,
                    created_id INTEGER,
                    status INTEGER,
                    exception TEXT,
                    message TEXT,
                    expires_at INTEGER NOT NULL,
                    PRIMARY KEY (tenant, key)
                );
                CREATE INDEX cs_keys_by_expiry ON cs_keys (expires_at);
                """)
        }
        return m
    }

    /// Reads a pragma on the writer connection (tests and diagnostics).
    func pragma(_ name: String) async throws -> Int? {
        try await pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA \(name)") }
    }

    public func close() async throws {
        try Self.mappingErrorsSync { try pool.close() }
    }

    // MARK: Writes

    public func write(_ requests: [WriteRequest]) async throws -> [WriteReply] {
        try await Self.mappingErrors { try await self.writeInTransaction(requests) }
    }

    public func purgeExpiredKeys(limit: Int) async throws -> Int {
        let now = nowMilliseconds()
        return try await Self.mappingErrors {
            try await self.pool.write { db in
                try db.execute(sql: """
                    DELETE FROM cs_keys WHERE rowid IN (SELECT rowid FROM cs_keys WHERE expires_at <= ? LIMIT ?)
                    """, arguments: [now, limit])
                return db.changesCount
            }
        }
    }

    /// GRDB's errors stay in this file: the service sees `TaskStoreError` (README, "Storage
    /// failures"). A busy or locked database is load; anything else failed. Either way the
    /// transaction rolled back, so nothing was applied.
    private static func mappingErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw mapped(error)
        }
    }

    private static func mappingErrorsSync<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw mapped(error)
        }
    }

    /// The contract's refusals and the store's own errors pass; anything of GRDB's (or any
    /// other library's) becomes a `TaskStoreError`.
    private static func mapped(_ error: any Error) -> any Error {
        switch error {
        case is ContextError, is TaskStoreError:
            return error
        case let error as DatabaseError:
            if error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
                return TaskStoreError(.busy, "\(error)")
            }
            return TaskStoreError(.failed, "\(error)")
        default:
            return TaskStoreError(.failed, "\(error)")
        }
    }

    private func writeInTransaction(_ requests: [WriteRequest]) async throws -> [WriteReply] {
        if requests.count == 1, requests[0].claim == nil {
            // No savepoint needed: a refusal thrown out of `pool.write` rolls the whole
            // transaction back (an id counter bumped before a later check failed included).
            do {
                return [WriteReply(.success(try await pool.write { db in try Self.apply(requests[0].command, db) }))]
            } catch let error as ContextError {
                return [WriteReply(.failure(error))]
            }
        }
        let now = nowMilliseconds()
        return try await pool.write { db in
            var results: [WriteReply] = []
            results.reserveCapacity(requests.count)
            // Each command in its own savepoint, so a refused one changes nothing. Cached
            // statements rather than GRDB's `inSavepoint`, which compiles "SAVEPOINT" and
            // "RELEASE" anew for every command: 5.5% of the CPU of a batched durable StartTask
            // run went to savepoints before (perf, RESULTS.md).
            let begin = try db.cachedStatement(sql: "SAVEPOINT cs_item")
            let release = try db.cachedStatement(sql: "RELEASE SAVEPOINT cs_item")
            let rollback = try db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT cs_item")
            for request in requests {
                if let claim = request.claim, !claim.fresh, let known = try Self.storedKey(claim, now: now, db) {
                    results.append(known)
                    continue
                }
                let command = request.command
                let result: Result<WriteOutcome, ContextError>
                if !Self.mayChangeThenRefuse(command) {
                    // A start refuses before it changes anything: no savepoint to pay for
                    // (two statements per item, the hot path of a batch of starts).
                    do {
                        result = .success(try Self.apply(command, db))
                    } catch let error as ContextError {
                        result = .failure(error)
                    }
                } else {
                    try begin.execute()
                    do {
                        result = .success(try Self.apply(command, db))
                    } catch let error as ContextError {
                        try rollback.execute()
                        result = .failure(error)
                    }
                    try release.execute()
                }
                if let claim = request.claim {
                    try Self.storeKey(claim, result, now: now, db)
                }
                results.append(WriteReply(result))
            }
            return results
        }
    }

    /// The answer kept under a live key: a replay, or 422 for another request; nil when the
    /// key is new (or expired).
    private static func storedKey(_ claim: IdempotencyClaim, now: Int64, _ db: Database) throws -> WriteReply? {
        let stmt = try db.cachedStatement(sql: """
            SELECT fingerprint, kind, created_id, status, exception, message FROM cs_keys
            WHERE tenant = ? AND key = ? AND expires_at > ?
            """)
        guard let row = try Row.fetchOne(stmt, arguments: [claim.tenant, claim.key, now]) else { return nil }
        let fingerprint: [UInt8] = try row.withUnsafeData(atIndex: 0) { $0.map { [UInt8]($0) } } ?? []
        guard fingerprint == claim.fingerprint else { return WriteReply(.failure(.idempotencyKeyMismatch())) }
        let outcome = StoredOutcome(kind: row[1], id: row[2], status: row[3], exception: row[4], message: row[5])
        return WriteReply(outcome.result, replayed: true)
    }

    /// Keeps the outcome under the key, in the write's transaction (an expired key's row is
    /// replaced).
    private static func storeKey(
        _ claim: IdempotencyClaim, _ result: Result<WriteOutcome, ContextError>, now: Int64, _ db: Database
    ) throws {
        let o = StoredOutcome(result)
        try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO cs_keys (tenant, key, fingerprint, kind, created_id, status, exception, message, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [claim.tenant, claim.key, Data(claim.fingerprint), o.kind, o.id, o.status, o.exception,
                                     o.message, now + claim.lifetimeSeconds * 1000])
    }

    /// Whether `apply` may change the database and then refuse the command (so it needs a
    /// savepoint in a batch). The starts make every check before their first change.
    private static func mayChangeThenRefuse(_ command: WriteCommand) -> Bool {
        switch command {
        case .startService, .startState, .startTask: false
        case .endService, .deleteService, .endState, .endTask: true
        }
    }

    private static func apply(_ command: WriteCommand, _ db: Database) throws -> WriteOutcome {
        switch command {
        case .startService(let tenant, let r):
            let stmt = try db.cachedStatement(sql: """
                INSERT INTO services (tenant, type_text, head, started, ext) VALUES (?, ?, ?, ?, ?)
                """)
            try stmt.execute(arguments: [tenant, r.typeText, Data(r.head), Data(r.started), Data(r.extensions)])
            return .created(db.lastInsertedRowID)

        case .endService(let tenant, let sid, let completed):
            let stmt = try db.cachedStatement(sql: """
                UPDATE services SET completed = ? WHERE service_id = ? AND tenant = ? AND completed IS NULL
                """)
            try stmt.execute(arguments: [Data(completed), sid, tenant])
            if db.changesCount == 0 {
                try requireService(db, tenant, sid)
                throw ContextError.alreadyCompleted(.service, sid)
            }
            return .done

        case .deleteService(let tenant, let sid):
            try db.cachedStatement(sql: "DELETE FROM services WHERE service_id = ? AND tenant = ?")
                .execute(arguments: [sid, tenant])
            guard db.changesCount == 1 else { throw ContextError.notFound(.service, sid) }
            try db.cachedStatement(sql: "DELETE FROM states WHERE service_id = ?").execute(arguments: [sid])
            try db.cachedStatement(sql: "DELETE FROM tasks WHERE service_id = ?").execute(arguments: [sid])
            return .done

        case .startState(let tenant, let sid, let r):
            let id = try nextID(db, column: "last_state_id", kind: .state, tenant, sid)
            try db.cachedStatement(sql: """
                INSERT INTO states (service_id, state_id, type_text, head, started, ext) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [sid, id, r.typeText, Data(r.head), Data(r.started), Data(r.extensions)])
            return .created(id)

        case .startTask(let tenant, let sid, let r):
            // Every check before the first change (`mayChangeThenRefuse`): the state, then the
            // id (whose UPDATE changes nothing when it refuses).
            if let state = r.stateID {
                let exists = try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT 1 FROM states WHERE service_id = ? AND state_id = ?"),
                    arguments: [sid, state]) ?? false
                guard exists else {
                    try requireService(db, tenant, sid)  // an unknown service is the error to report first
                    throw ContextError.notFound(.state, state)
                }
            }
            let id = try nextID(db, column: "last_task_id", kind: .task, tenant, sid)
            try db.cachedStatement(sql: """
                INSERT INTO tasks (service_id, task_id, state_id, type_text, head, started, ext)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [sid, id, r.stateID, r.typeText, Data(r.head), Data(r.started), Data(r.extensions)])
            return .created(id)

        case .endState(let tenant, let sid, let stid, let completed):
            try end(db, table: "states", idColumn: "state_id", kind: .state, tenant, sid, stid, completed)
            return .done

        case .endTask(let tenant, let sid, let tid, let completed):
            try end(db, table: "tasks", idColumn: "task_id", kind: .task, tenant, sid, tid, completed)
            return .done
        }
    }

    /// Built once: `cachedStatement` looks statements up by their text, per item of a batch.
    private static let nextTaskIDSQL = nextIDSQL("last_task_id")
    private static let nextStateIDSQL = nextIDSQL("last_state_id")
    private static func nextIDSQL(_ column: String) -> String {
        """
        UPDATE services SET \(column) = \(column) + 1
        WHERE service_id = ? AND tenant = ? AND \(column) < \(ResourceID.maxChildID) RETURNING \(column)
        """
    }

    /// Allocates the next per-service id inside the current transaction (§1).
    private static func nextID(
        _ db: Database, column: String, kind: ResourceKind, _ tenant: String, _ sid: Int64
    ) throws -> Int64 {
        // Changes nothing when it refuses: the counter moves only when the service is there
        // and has ids left.
        let stmt = try db.cachedStatement(sql: column == "last_task_id" ? nextTaskIDSQL : nextStateIDSQL)
        if let id = try Int64.fetchOne(stmt, arguments: [sid, tenant]) { return id }
        try requireService(db, tenant, sid)
        throw ContextError.idSpaceExhausted(kind, serviceID: sid)
    }

    private static func end(
        _ db: Database, table: String, idColumn: String, kind: ResourceKind,
        _ tenant: String, _ sid: Int64, _ id: Int64, _ completed: [UInt8]
    ) throws {
        try requireService(db, tenant, sid)
        try db.cachedStatement(sql: """
            UPDATE \(table) SET completed = ? WHERE service_id = ? AND \(idColumn) = ? AND completed IS NULL
            """).execute(arguments: [Data(completed), sid, id])
        if db.changesCount == 0 {
            let exists = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM \(table) WHERE service_id = ? AND \(idColumn) = ?"),
                arguments: [sid, id]) ?? false
            throw exists ? ContextError.alreadyCompleted(kind, id) : ContextError.notFound(kind, id)
        }
    }

    private static func requireService(_ db: Database, _ tenant: String, _ sid: Int64) throws {
        let exists = try Bool.fetchOne(
            db.cachedStatement(sql: "SELECT 1 FROM services WHERE service_id = ? AND tenant = ?"),
            arguments: [sid, tenant]) ?? false
        guard exists else { throw ContextError.notFound(.service, sid) }
    }

    // MARK: Reads

    public func service(tenant: String, serviceID sid: Int64, include: ServiceInclude) async throws -> ResourceView {
        try await Self.mappingErrors { try await self.pool.read { db in
            let stmt = try db.cachedStatement(sql: """
                SELECT service_id, head, started, completed, ext FROM services WHERE service_id = ? AND tenant = ?
                """)
            guard let row = try Row.fetchOne(stmt, arguments: [sid, tenant]) else {
                throw ContextError.notFound(.service, sid)
            }
            var view = ResourceView(record: try Self.record(.service, sid, row))
            let arrays: [(Bool, String, String, ResourceKind, String)] = [
                (include.activeStates, "active_states", "states", .state, "completed IS NULL"),
                (include.completedStates, "completed_states", "states", .state, "completed IS NOT NULL"),
                (include.activeTasks, "active_tasks", "tasks", .task, "completed IS NULL"),
                (include.completedTasks, "completed_tasks", "tasks", .task, "completed IS NOT NULL"),
            ]
            for (wanted, name, table, kind, condition) in arrays where wanted {
                let records = try Self.records(db, kind, sql: """
                    SELECT \(kind.idKey), head, started, completed, ext FROM \(table)
                    WHERE service_id = ? AND \(condition) ORDER BY \(kind.idKey)
                    """, [sid], serviceID: sid)
                view.children.append((name, records))
            }
            return view
        } }
    }

    public func state(tenant: String, serviceID sid: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView {
        try await Self.mappingErrors { try await self.pool.read { db in
            try Self.requireService(db, tenant, sid)
            let stmt = try db.cachedStatement(sql: """
                SELECT state_id, head, started, completed, ext FROM states WHERE service_id = ? AND state_id = ?
                """)
            guard let row = try Row.fetchOne(stmt, arguments: [sid, stateID]) else {
                throw ContextError.notFound(.state, stateID)
            }
            var view = ResourceView(record: try Self.record(.state, sid, row))
            for (wanted, name, condition) in [
                (include.activeTasks, "active_tasks", "completed IS NULL"),
                (include.completedTasks, "completed_tasks", "completed IS NOT NULL"),
            ] where wanted {
                let records = try Self.records(db, .task, sql: """
                    SELECT task_id, head, started, completed, ext FROM tasks
                    WHERE service_id = ? AND state_id = ? AND \(condition) ORDER BY task_id
                    """, [sid, stateID], serviceID: sid)
                view.children.append((name, records))
            }
            return view
        } }
    }

    public func task(tenant: String, serviceID sid: Int64, taskID: Int64) async throws -> ResourceRecord {
        try await Self.mappingErrors { try await self.pool.read { db in
            try Self.requireService(db, tenant, sid)
            let stmt = try db.cachedStatement(sql: """
                SELECT task_id, head, started, completed, ext FROM tasks WHERE service_id = ? AND task_id = ?
                """)
            guard let row = try Row.fetchOne(stmt, arguments: [sid, taskID]) else {
                throw ContextError.notFound(.task, taskID)
            }
            return try Self.record(.task, sid, row)
        } }
    }

    public func tasks(tenant: String, serviceID sid: Int64, filter: TaskFilter) async throws -> [ResourceRecord] {
        try await Self.mappingErrors { try await self.pool.read { db in
            try Self.requireService(db, tenant, sid)
            var sql = "SELECT task_id, head, started, completed, ext FROM tasks WHERE service_id = ?"
            var arguments: StatementArguments = [sid]
            switch filter.status {
            case .all: break
            case .active: sql += " AND completed IS NULL"
            case .completed: sql += " AND completed IS NOT NULL"
            }
            if let state = filter.stateID {
                sql += " AND state_id = ?"
                arguments += [state]
            }
            if !filter.taskTypes.isEmpty {
                sql += " AND type_text IN (" + Array(repeating: "?", count: filter.taskTypes.count).joined(separator: ",") + ")"
                arguments += StatementArguments(filter.taskTypes)
            }
            sql += " ORDER BY task_id"
            return try Self.records(db, .task, sql: sql, arguments, serviceID: sid)
        } }
    }

    private static func records(
        _ db: Database, _ kind: ResourceKind, sql: String, _ arguments: StatementArguments, serviceID: Int64
    ) throws -> [ResourceRecord] {
        let rows = try Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
        var out: [ResourceRecord] = []
        while let row = try rows.next() {
            out.append(try record(kind, serviceID, row))
        }
        return out
    }

    /// Columns: id, head, started, completed, ext.
    private static func record(_ kind: ResourceKind, _ sid: Int64, _ row: Row) throws -> ResourceRecord {
        func bytes(_ i: Int) throws -> [UInt8]? {
            try row.withUnsafeData(atIndex: i) { $0.map { [UInt8]($0) } }
        }
        return ResourceRecord(
            kind: kind, serviceID: sid, id: row[0],
            head: try bytes(1) ?? [], started: try bytes(2) ?? [], completed: try bytes(3),
            extensions: try bytes(4) ?? [])
    }
}
