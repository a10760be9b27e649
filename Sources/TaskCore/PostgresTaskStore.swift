import ContextModel
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
internal import PostgresNIO

/// The scale-out store: PostgreSQL through postgres-nio's `PostgresClient` (its own pool),
/// shared by any number of core processes. Same contract as `SQLiteTaskStore`, checked by the
/// same conformance tests.
///
/// **Ids** are allocated inside the write's transaction from counter rows (`cs_counters` for
/// services, `services.last_state_id` / `last_task_id` per service) with `UPDATE … RETURNING`,
/// so two cores never hand out the same id, and a refused or rolled-back insert leaves no gap
/// (STACK-NOTES-2: a concurrent `UPDATE` of the row waits for the first transaction, then
/// reads its result).
///
/// **Group commit**: one `write` call is one transaction (one commit, one WAL flush). Every
/// command makes all its checks before its first change, so a refused command changes
/// nothing without a savepoint, and no SQL error is expected inside a transaction.
///
/// **No deadlocks by construction**: a transaction that will lock more than one row locks
/// them all first, in one order (the service counter, then services by id) with `SELECT … FOR
/// UPDATE`; task and state rows are only written by a transaction that holds their service's
/// lock, or by a single-command transaction that holds nothing else. A deadlock or
/// serialization failure reported anyway (40P01, 40001) is retried, as is a connection lost
/// before the commit: in both cases the server rolled the whole transaction back.
///
/// **Failures** (README, "Storage failures"): anything before `COMMIT` is sent (including
/// the time limit) means nothing was applied (`TaskStoreError.unavailable`, 503); a
/// connection lost while `COMMIT` is under way means the outcome is unknown
/// (`.outcomeUnknown`, 500).
public final class PostgresTaskStore: TaskStore {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int = 5432
        public var username: String
        /// From an environment variable or a file, never the command line (README).
        public var password: String?
        public var database: String
        public enum TLSMode: String, Sendable, CaseIterable { case disable, prefer, require }
        public var tls: TLSMode = .prefer
        /// Connections of this core process to PostgreSQL (postgres-nio's pool). Group commit
        /// keeps the need small: a core runs one batch transaction per gateway loop at a time.
        public var maxConnections = 16
        /// How long one store call may take to get a connection and run its statements,
        /// retries included, before it gives up (503, nothing applied). postgres-nio's pool
        /// keeps a request waiting through its own backoff while PostgreSQL is down (its
        /// circuit breaker trips only after 60 s): this bound is what makes calls fail fast
        /// during an outage.
        public var operationTimeout: Duration = .seconds(3)
        /// Once `COMMIT` is sent, how much longer to wait for its answer before reporting the
        /// outcome as unknown.
        public var commitGrace: Duration = .seconds(10)
        public var connectTimeout: Duration = .seconds(2)
        /// Whole attempts of one transaction (the first included) for the failures that
        /// certainly rolled it back: deadlock, serialization failure, connection lost before
        /// the commit.
        public var maxAttempts = 3

        public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
        }

        /// `postgres://user@host:port/database?sslmode=disable|prefer|require`. A password in
        /// the URL is refused: command lines are visible to every user of the machine (`ps`).
        public static func parse(url: String, password: String?) throws(ConfigurationError) -> Configuration {
            guard let c = URLComponents(string: url), c.scheme == "postgres" || c.scheme == "postgresql" else {
                throw ConfigurationError("--store must be sqlite:PATH, memory or postgres://user@host:port/database, got '\(url)'")
            }
            guard c.password == nil else {
                throw ConfigurationError("--store must not carry a password: set CS_STORE_PASSWORD or --store-password-file")
            }
            guard let host = c.host, !host.isEmpty else { throw ConfigurationError("--store: no host in '\(url)'") }
            let database = String(c.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else {
                throw ConfigurationError("--store: name one database, as in postgres://user@host:5432/taskcore")
            }
            var config = Configuration(host: host, port: c.port ?? 5432, username: c.user ?? "postgres",
                                       password: password, database: database)
            for item in c.queryItems ?? [] {
                switch item.name {
                case "sslmode":
                    guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                        throw ConfigurationError("--store: sslmode must be disable, prefer or require")
                    }
                    config.tls = mode
                default:
                    throw ConfigurationError("--store: unknown parameter '\(item.name)' (only sslmode is understood)")
                }
            }
            return config
        }

        /// For logs: never the password.
        public var description: String { "postgres://\(username)@\(host):\(port)/\(database)?sslmode=\(tls.rawValue)" }
    }

    public struct ConfigurationError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public let identity: StoreIdentity
    public let configuration: Configuration
    private let client: PostgresClient
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// Transactions committed (tests count group commits with it).
    let commits = NIOLockedValueBox(0)

    private init(client: PostgresClient, runner: Task<Void, Never>, identity: StoreIdentity,
                 configuration: Configuration, logger: Logger) {
        self.client = client
        self.runner = runner
        self.identity = identity
        self.configuration = configuration
        self.logger = logger
    }

    /// Connects, creates or migrates the schema (under an advisory lock, so cores starting
    /// together take turns) and reads the store's identity. Fails when the database cannot
    /// be reached within the operation timeout.
    public static func open(
        _ configuration: Configuration, eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "cs.core.postgres")
    ) async throws -> PostgresTaskStore {
        // nil: postgres-nio's own group (its type stays inside this module: `internal import`).
        let eventLoopGroup = eventLoopGroup ?? PostgresClient.defaultEventLoopGroup
        let tls: PostgresClient.Configuration.TLS
        switch configuration.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var pg = PostgresClient.Configuration(host: configuration.host, port: configuration.port,
                                              username: configuration.username, password: configuration.password,
                                              database: configuration.database, tls: tls)
        pg.options.maximumConnections = configuration.maxConnections
        pg.options.connectTimeout = configuration.connectTimeout
        let client = PostgresClient(configuration: pg, eventLoopGroup: eventLoopGroup, backgroundLogger: logger)
        let runner = Task { await client.run() }
        do {
            let identity = try await Self.migrate(client, timeout: configuration.operationTimeout + .seconds(7), logger: logger)
            return PostgresTaskStore(client: client, runner: runner, identity: identity,
                                     configuration: configuration, logger: logger)
        } catch {
            runner.cancel()
            await runner.value
            throw error
        }
    }

    public func close() async throws {
        runner.cancel()
        await runner.value
    }

    // MARK: Schema

    /// Versioned migrations, applied in order, each once (`cs_schema_migrations`). Add one for
    /// every change; never edit a shipped one.
    static let migrations: [(version: Int, sql: [String])] = [
        (1, [
            // One row: who this store is. gen_random_uuid() is built in since PostgreSQL 13.
            """
            CREATE TABLE cs_store (
                one boolean PRIMARY KEY DEFAULT true CHECK (one),
                store_id text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now())
            """,
            "INSERT INTO cs_store (store_id) VALUES (gen_random_uuid()::text)",
            // The service id counter: a row, not a sequence, because a sequence leaves a gap
            // for every rolled-back transaction and the contract's ids have none.
            "CREATE TABLE cs_counters (name text PRIMARY KEY, value bigint NOT NULL)",
            "INSERT INTO cs_counters (name, value) VALUES ('service', 0)",
            """
            CREATE TABLE services (
                service_id bigint PRIMARY KEY,
                tenant text NOT NULL,
                type_text text,
                head bytea NOT NULL,
                started bytea NOT NULL,
                completed bytea,
                ext bytea NOT NULL,
                last_state_id integer NOT NULL DEFAULT 0,
                last_task_id integer NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE states (
                service_id bigint NOT NULL,
                state_id integer NOT NULL,
                type_text text,
                head bytea NOT NULL,
                started bytea NOT NULL,
                completed bytea,
                ext bytea NOT NULL,
                PRIMARY KEY (service_id, state_id))
            """,
            """
            CREATE TABLE tasks (
                service_id bigint NOT NULL,
                task_id integer NOT NULL,
                state_id integer,
                type_text text,
                head bytea NOT NULL,
                started bytea NOT NULL,
                completed bytea,
                ext bytea NOT NULL,
                PRIMARY KEY (service_id, task_id))
            """,
            "CREATE INDEX tasks_by_state ON tasks (service_id, state_id)",
        ]),
        (2, [
            // (tenant, key) → the request's fingerprint and the outcome, written in the same
            // transaction as the write (README, "Exactly once"). kind -1: claimed by a
            // transaction still running (never seen committed).
            """
            CREATE TABLE cs_keys (
                tenant text NOT NULL,
                key text NOT NULL,
                fingerprint bytea NOT NULL,
                kind bigint NOT NULL,
                created_id bigint,
                status bigint,
                exception text,
                message text,
                expires_at bigint NOT NULL,
                PRIMARY KEY (tenant, key))
            """,
            // BRIN, not a B-tree: keys are written in roughly expiry order, so block ranges
            // find the expired ones for the purge, at a fraction of a B-tree's cost per write.
            "CREATE INDEX cs_keys_by_expiry ON cs_keys USING brin (expires_at)",
        ]),
    ]

    /// Any constant of our own: the advisory lock that serialises migrations across cores.
    private static let migrationLock: Int64 = 0x6373_5f6d_6967  // "cs_mig"

    private static func migrate(_ client: PostgresClient, timeout: Duration, logger: Logger) async throws -> StoreIdentity {
        try await withTimeout(timeout, what: "opening the PostgreSQL store") {
            try await client.withConnection { conn in
                try await conn.run("BEGIN", logger)
                do {
                    try await conn.run("SELECT pg_advisory_xact_lock(\(migrationLock))", logger)
                    try await conn.run("""
                        CREATE TABLE IF NOT EXISTS cs_schema_migrations (
                            version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
                        """, logger)
                    var applied = Set<Int>()
                    for try await v in try await conn.query("SELECT version::bigint FROM cs_schema_migrations", logger: logger)
                        .decode(Int64.self) { applied.insert(Int(v)) }
                    for migration in migrations where !applied.contains(migration.version) {
                        logger.info("migrating the PostgreSQL store", metadata: ["version": "\(migration.version)"])
                        for sql in migration.sql { try await conn.run(PostgresQuery(unsafeSQL: sql), logger) }
                        try await conn.run("INSERT INTO cs_schema_migrations (version) VALUES (\(migration.version))", logger)
                    }
                    var id: String?
                    for try await s in try await conn.query("SELECT store_id FROM cs_store", logger: logger)
                        .decode(String.self) { id = s }
                    try await conn.run("COMMIT", logger)
                    guard let id else { throw TaskStoreError(.failed, "cs_store has no row") }
                    return StoreIdentity(id: id, engine: "postgres")
                } catch {
                    try? await conn.run("ROLLBACK", logger)
                    throw error
                }
            }
        }
    }

    // MARK: Running statements within a time limit

    /// One store call's progress, shared between the call and its timer: the timer may give
    /// up on the call only while nothing can have been committed.
    private final class Attempt: @unchecked Sendable {
        enum Phase { case running, committing, finished, abandoned }
        private let lock = NIOLock()
        private var phase = Phase.running

        /// Before `COMMIT` is sent: false if the call was given up, and it must roll back.
        func beginCommit() -> Bool {
            lock.withLock {
                guard phase == .running else { return false }
                phase = .committing
                return true
            }
        }

        var isCommitting: Bool { lock.withLock { phase == .committing } }

        /// The timer: gives the call up if it has not started committing.
        func abandon() -> Bool {
            lock.withLock {
                guard phase == .running else { return false }
                phase = .abandoned
                return true
            }
        }

        /// Whoever comes first (the result, or the timer) answers; false for the other.
        func finish() -> Bool {
            lock.withLock {
                guard phase == .running || phase == .committing else { return false }
                phase = .finished
                return true
            }
        }

        func finishCommitting() -> Bool {
            lock.withLock {
                guard phase == .committing else { return false }
                phase = .finished
                return true
            }
        }
    }

    private struct Abandoned: Error {}

    /// Runs `body` on a leased connection within the operation timeout. Reads pass
    /// `transaction: false`. The body runs in a task of its own so that a connection that
    /// never answers (STACK-NOTES-2: a query on a closed connection can hang) cannot hold the
    /// caller past its limit.
    private func run<T: Sendable>(
        transaction: Bool, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let attempt = Attempt()
        let configuration = self.configuration
        let client = self.client, logger = self.logger
        let work = Task<T, any Error> {
            var tries = 0
            while true {
                tries += 1
                do {
                    return try await client.withConnection { conn in
                        guard transaction else { return try await body(conn) }
                        try await conn.run("BEGIN", logger)
                        let value: T
                        do {
                            value = try await body(conn)
                        } catch {
                            try? await conn.run("ROLLBACK", logger)
                            throw error
                        }
                        guard attempt.beginCommit() else {
                            try? await conn.run("ROLLBACK", logger)
                            throw Abandoned()
                        }
                        try await conn.run("COMMIT", logger)
                        return value
                    }
                } catch let error where tries < configuration.maxAttempts && !attempt.isCommitting
                    && Self.classify(error, committing: false) == .retry && !Task.isCancelled {
                    logger.debug("retrying a store transaction", metadata: ["error": "\(String(reflecting: error))"])
                    try? await Task.sleep(for: .milliseconds(5 * tries))
                }
            }
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let answered = NIOLockedValueBox(false)
                @Sendable func answer(_ result: Result<T, any Error>) {
                    let first = answered.withLockedValue { done in
                        defer { done = true }
                        return !done
                    }
                    if first { continuation.resume(with: result) }
                }
                let timer = Task {
                    try? await Task.sleep(for: configuration.operationTimeout)
                    if Task.isCancelled { return }
                    if attempt.abandon() {
                        work.cancel()  // a lease still waited for is given up
                        answer(.failure(TaskStoreError(.unavailable, "no answer from PostgreSQL within \(configuration.operationTimeout)")))
                        return
                    }
                    // Committing: the answer decides. Wait a little longer, then say so.
                    try? await Task.sleep(for: configuration.commitGrace)
                    if Task.isCancelled { return }
                    if attempt.finishCommitting() {
                        answer(.failure(TaskStoreError(.outcomeUnknown, "COMMIT got no answer from PostgreSQL")))
                    }
                }
                Task {
                    let result = await work.result
                    timer.cancel()
                    guard attempt.finish() else { return }  // the timer answered already
                    switch result {
                    case .success:
                        if transaction { commits.withLockedValue { $0 += 1 } }
                        answer(result)
                    case .failure(let error as ContextError):
                        answer(.failure(error))
                    case .failure(let error):
                        answer(.failure(self.storeError(error, committing: attempt.isCommitting || Self.failedInCommit(error))))
                    }
                }
            }
        } onCancel: {
            work.cancel()
        }
    }

    private enum Verdict { case retry, unavailable, unknown, failed }

    /// What a failure means for the transaction (README, "Storage failures").
    private static func classify(_ error: any Error, committing: Bool) -> Verdict {
        if error is CancellationError || error is Abandoned { return .unavailable }
        guard let pg = error as? PSQLError else { return .failed }
        switch pg.code {
        case .server:
            let state = pg.serverInfo?[.sqlState] ?? ""
            switch state {
            case "40001", "40P01":  // serialization failure, deadlock: rolled back by the server
                return .retry
            case "57P01", "57P02", "57P03", "53300":  // shutting down, crashed, starting, too many connections
                return committing ? .unknown : .retry
            default:
                if state.hasPrefix("08") { return committing ? .unknown : .retry }  // connection exceptions
                // The server answered with an error: whatever it was, it rolled back.
                return .failed
            }
        case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown:
            return committing ? .unknown : .retry
        case .poolClosed:
            return .unavailable
        default:
            return committing ? .unknown : .failed
        }
    }

    /// Whether the error came from the `COMMIT` statement itself (postgres-nio attaches the
    /// query to the errors of its statements).
    private static func failedInCommit(_ error: any Error) -> Bool {
        (error as? PSQLError)?.query?.sql == "COMMIT"
    }

    private func storeError(_ error: any Error, committing: Bool) -> TaskStoreError {
        let detail = String(reflecting: error)
        switch Self.classify(error, committing: committing) {
        case .retry, .unavailable:
            logger.warning("PostgreSQL unavailable; the call was not applied", metadata: ["error": "\(detail)"])
            return TaskStoreError(.unavailable, detail)
        case .unknown:
            logger.error("PostgreSQL connection lost while committing; outcome unknown", metadata: ["error": "\(detail)"])
            return TaskStoreError(.outcomeUnknown, detail)
        case .failed:
            logger.error("PostgreSQL failure; the call was not applied", metadata: ["error": "\(detail)"])
            return TaskStoreError(.failed, detail)
        }
    }

    // MARK: Writes

    public func write(_ requests: [WriteRequest]) async throws -> [WriteReply] {
        try await run(transaction: true) { [logger] conn in
            if requests.count == 1, requests[0].claim == nil {
                // One statement, one row lock: the path of unbatched calls.
                do {
                    return [WriteReply(.success(try await Self.apply(requests[0].command, conn, logger)))]
                } catch let error as ContextError {
                    return [WriteReply(.failure(error))]
                }
            }
            var group = GroupWrite(conn: conn, logger: logger)
            return try await group.run(requests)
        }
    }

    public func purgeExpiredKeys(limit: Int) async throws -> Int {
        let now = nowMilliseconds()
        return try await run(transaction: false) { [logger] conn in
            try await conn.int("""
                WITH gone AS (DELETE FROM cs_keys WHERE ctid IN (
                    SELECT ctid FROM cs_keys WHERE expires_at <= \(now) LIMIT \(Int64(limit))) RETURNING 1)
                SELECT count(*)::bigint FROM gone
                """, logger).map { Int($0) } ?? 0
        }
    }

    /// One command in one statement (and a look-up or two to say why, when it is refused).
    static func applyOne(_ command: WriteCommand, _ conn: PostgresConnection, _ logger: Logger) async throws -> WriteOutcome {
        try await apply(command, conn, logger)
    }

    private static func apply(_ command: WriteCommand, _ conn: PostgresConnection, _ logger: Logger) async throws -> WriteOutcome {
        switch command {
        case .startService(let tenant, let r):
            let id = try await conn.int("""
                WITH id AS (UPDATE cs_counters SET value = value + 1 WHERE name = 'service' RETURNING value)
                INSERT INTO services (service_id, tenant, type_text, head, started, ext)
                SELECT value, \(tenant), \(r.typeText), \(bytes(r.head)), \(bytes(r.started)), \(bytes(r.extensions)) FROM id
                RETURNING service_id
                """, logger)
            guard let id else { throw TaskStoreError(.failed, "the service counter row is missing") }
            return .created(id)

        case .endService(let tenant, let sid, let completed):
            let done = try await conn.int("""
                UPDATE services SET completed = \(bytes(completed))
                WHERE service_id = \(sid) AND tenant = \(tenant) AND completed IS NULL RETURNING 1::bigint
                """, logger)
            if done == nil {
                try await requireService(conn, tenant, sid, logger)
                throw ContextError.alreadyCompleted(.service, sid)
            }
            return .done

        case .deleteService(let tenant, let sid):
            // One statement: every data-modifying CTE runs, the children only when the
            // service row (of this tenant) was deleted.
            let deleted = try await conn.int("""
                WITH s AS (DELETE FROM services WHERE service_id = \(sid) AND tenant = \(tenant) RETURNING service_id),
                     st AS (DELETE FROM states WHERE service_id IN (SELECT service_id FROM s)),
                     t AS (DELETE FROM tasks WHERE service_id IN (SELECT service_id FROM s))
                SELECT count(*)::bigint FROM s
                """, logger)
            guard deleted == 1 else { throw ContextError.notFound(.service, sid) }
            return .done

        case .startState(let tenant, let sid, let r):
            let id = try await conn.int("""
                WITH id AS (
                    UPDATE services SET last_state_id = last_state_id + 1
                    WHERE service_id = \(sid) AND tenant = \(tenant) AND last_state_id < \(ResourceID.maxChildID)
                    RETURNING last_state_id)
                INSERT INTO states (service_id, state_id, type_text, head, started, ext)
                SELECT \(sid), last_state_id, \(r.typeText), \(bytes(r.head)), \(bytes(r.started)), \(bytes(r.extensions)) FROM id
                RETURNING state_id::bigint
                """, logger)
            if let id { return .created(id) }
            try await requireService(conn, tenant, sid, logger)
            throw ContextError.idSpaceExhausted(.state, serviceID: sid)

        case .startTask(let tenant, let sid, let r):
            // The counter moves only when the service is there, has ids left, and the state
            // named (if any) exists: a refusal changes nothing.
            let id = try await conn.int("""
                WITH id AS (
                    UPDATE services SET last_task_id = last_task_id + 1
                    WHERE service_id = \(sid) AND tenant = \(tenant) AND last_task_id < \(ResourceID.maxChildID)
                      AND (\(r.stateID)::bigint IS NULL
                           OR EXISTS (SELECT 1 FROM states WHERE service_id = \(sid) AND state_id = \(r.stateID)))
                    RETURNING last_task_id)
                INSERT INTO tasks (service_id, task_id, state_id, type_text, head, started, ext)
                SELECT \(sid), last_task_id, \(r.stateID), \(r.typeText), \(bytes(r.head)), \(bytes(r.started)), \(bytes(r.extensions))
                FROM id
                RETURNING task_id::bigint
                """, logger)
            if let id { return .created(id) }
            // Why not, in the order SQLite reports it: the service, the state, the id space.
            try await requireService(conn, tenant, sid, logger)
            if let state = r.stateID,
               try await conn.int("SELECT 1::bigint FROM states WHERE service_id = \(sid) AND state_id = \(state)", logger) == nil {
                throw ContextError.notFound(.state, state)
            }
            throw ContextError.idSpaceExhausted(.task, serviceID: sid)

        case .endState(let tenant, let sid, let stid, let completed):
            try await end(conn, table: "states", idColumn: "state_id", kind: .state, tenant, sid, stid, completed, logger)
            return .done

        case .endTask(let tenant, let sid, let tid, let completed):
            try await end(conn, table: "tasks", idColumn: "task_id", kind: .task, tenant, sid, tid, completed, logger)
            return .done
        }
    }

    /// Completes a state or a task: one statement; when it changes nothing, the reason in the
    /// order SQLite gives it (the service, then the resource: missing or already completed).
    private static func end(
        _ conn: PostgresConnection, table: String, idColumn: String, kind: ResourceKind,
        _ tenant: String, _ sid: Int64, _ id: Int64, _ completed: [UInt8], _ logger: Logger
    ) async throws {
        // Table and column names are this file's constants, never input.
        var update = PostgresQuery(unsafeSQL: """
            UPDATE \(table) SET completed = $1
            WHERE service_id = $2 AND \(idColumn) = $3 AND completed IS NULL
              AND EXISTS (SELECT 1 FROM services WHERE service_id = $2 AND tenant = $4)
            RETURNING 1::bigint
            """)
        update.binds.append(bytes(completed))
        update.binds.append(sid)
        update.binds.append(id)
        update.binds.append(tenant)
        guard try await conn.int(update, logger) == nil else { return }
        try await requireService(conn, tenant, sid, logger)
        var exists = PostgresQuery(unsafeSQL: "SELECT 1::bigint FROM \(table) WHERE service_id = $1 AND \(idColumn) = $2")
        exists.binds.append(sid)
        exists.binds.append(id)
        throw try await conn.int(exists, logger) != nil ? ContextError.alreadyCompleted(kind, id) : ContextError.notFound(kind, id)
    }

    private static func requireService(_ conn: PostgresConnection, _ tenant: String, _ sid: Int64, _ logger: Logger) async throws {
        let exists = try await conn.int("SELECT 1::bigint FROM services WHERE service_id = \(sid) AND tenant = \(tenant)", logger)
        guard exists != nil else { throw ContextError.notFound(.service, sid) }
    }

    private static func bytes(_ b: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: b) }

    // MARK: Reads

    public func service(tenant: String, serviceID sid: Int64, include: ServiceInclude) async throws -> ResourceView {
        try await run(transaction: false) { [logger] conn in
            let rows = try await conn.records(.service, sid, """
                SELECT service_id, head, started, completed, ext FROM services WHERE service_id = \(sid) AND tenant = \(tenant)
                """, logger)
            guard let record = rows.first else { throw ContextError.notFound(.service, sid) }
            var view = ResourceView(record: record)
            let arrays: [(Bool, String, String, ResourceKind, String)] = [
                (include.activeStates, "active_states", "states", .state, "completed IS NULL"),
                (include.completedStates, "completed_states", "states", .state, "completed IS NOT NULL"),
                (include.activeTasks, "active_tasks", "tasks", .task, "completed IS NULL"),
                (include.completedTasks, "completed_tasks", "tasks", .task, "completed IS NOT NULL"),
            ]
            for (wanted, name, table, kind, condition) in arrays where wanted {
                var query = PostgresQuery(unsafeSQL: """
                    SELECT \(kind.idKey)::bigint, head, started, completed, ext FROM \(table)
                    WHERE service_id = $1 AND \(condition) ORDER BY \(kind.idKey)
                    """)
                query.binds.append(sid)
                view.children.append((name, try await conn.records(kind, sid, query, logger)))
            }
            return view
        }
    }

    public func state(tenant: String, serviceID sid: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView {
        try await run(transaction: false) { [logger] conn in
            try await Self.requireService(conn, tenant, sid, logger)
            let rows = try await conn.records(.state, sid, """
                SELECT state_id::bigint, head, started, completed, ext FROM states WHERE service_id = \(sid) AND state_id = \(stateID)
                """, logger)
            guard let record = rows.first else { throw ContextError.notFound(.state, stateID) }
            var view = ResourceView(record: record)
            for (wanted, name, condition) in [
                (include.activeTasks, "active_tasks", "completed IS NULL"),
                (include.completedTasks, "completed_tasks", "completed IS NOT NULL"),
            ] where wanted {
                var query = PostgresQuery(unsafeSQL: """
                    SELECT task_id::bigint, head, started, completed, ext FROM tasks
                    WHERE service_id = $1 AND state_id = $2 AND \(condition) ORDER BY task_id
                    """)
                query.binds.append(sid)
                query.binds.append(stateID)
                view.children.append((name, try await conn.records(.task, sid, query, logger)))
            }
            return view
        }
    }

    public func task(tenant: String, serviceID sid: Int64, taskID: Int64) async throws -> ResourceRecord {
        try await run(transaction: false) { [logger] conn in
            try await Self.requireService(conn, tenant, sid, logger)
            let rows = try await conn.records(.task, sid, """
                SELECT task_id::bigint, head, started, completed, ext FROM tasks WHERE service_id = \(sid) AND task_id = \(taskID)
                """, logger)
            guard let record = rows.first else { throw ContextError.notFound(.task, taskID) }
            return record
        }
    }

    public func tasks(tenant: String, serviceID sid: Int64, filter: TaskFilter) async throws -> [ResourceRecord] {
        try await run(transaction: false) { [logger] conn in
            try await Self.requireService(conn, tenant, sid, logger)
            var sql = "SELECT task_id::bigint, head, started, completed, ext FROM tasks WHERE service_id = $1"
            var binds = PostgresBindings()
            binds.append(sid)
            switch filter.status {
            case .all: break
            case .active: sql += " AND completed IS NULL"
            case .completed: sql += " AND completed IS NOT NULL"
            }
            if let state = filter.stateID {
                binds.append(state)
                sql += " AND state_id = $\(binds.count)"
            }
            if !filter.taskTypes.isEmpty {
                binds.append(filter.taskTypes)
                sql += " AND type_text = ANY($\(binds.count))"
            }
            sql += " ORDER BY task_id"
            return try await conn.records(.task, sid, PostgresQuery(unsafeSQL: sql, binds: binds), logger)
        }
    }
}

/// A group of writes in one transaction (a batch), in as few round trips as the order of the
/// commands allows. Updating one counter row once per start, as a single call does, is
/// quadratic inside one transaction: every `UPDATE` of a row walks the versions the same
/// transaction made before (measured: 256 task starts on one service, 1.7 ms each, in psql).
/// So a group reads and locks its services once, allocates ids in memory while it holds the
/// row locks, and writes the new rows and the final counters in one statement each
/// (`unnest` of arrays): about six round trips for a batch of 256 starts.
///
/// Commands keep their order and single-call semantics: ends and deletes see the database,
/// so the rows pending before one are written first (`flush`).
private struct GroupWrite {
    let conn: PostgresConnection
    let logger: Logger

    struct Service {
        var tenant: String
        var lastState: Int64
        var lastTask: Int64
        var exists = true
        /// Its row is among `newServices`, not yet in the table.
        var pending = false
        /// Its counters moved since the last flush.
        var dirty = false
    }

    struct Row {
        var serviceID: Int64
        var id: Int64
        var resource: NewResource
    }

    private var services: [Int64: Service] = [:]
    private var states = Set<[Int64]>()  // [service, state] pairs known to exist
    private var newServices: [Row] = []
    private var newStates: [Row] = []
    private var newTasks: [Row] = []

    init(conn: PostgresConnection, logger: Logger) {
        self.conn = conn
        self.logger = logger
    }

    struct KeyID: Hashable {
        var tenant: String
        var key: String
        init(_ claim: IdempotencyClaim) {
            tenant = claim.tenant
            key = claim.key
        }
    }

    /// Requests with keys: each key claimed (or its stored answer read) first, in one order
    /// (tenant, key: so two groups never wait on each other's keys in a cycle); then the
    /// commands of the claimed keys and of the requests without one; then the outcomes kept
    /// under their keys, all in the group's transaction. A key twice in one group: the later
    /// one replays the first (or 422).
    mutating func run(_ requests: [WriteRequest]) async throws -> [WriteReply] {
        let claims = requests.compactMap(\.claim)
        guard !claims.isEmpty else {
            return try await run(requests.map(\.command)).map { WriteReply($0) }
        }
        // A gateway's first sends need no claim: their keys are new by construction.
        let lookedUp = claims.filter { !$0.fresh }
        var (claimed, stored) = lookedUp.isEmpty ? ([], [:]) : try await claim(lookedUp)
        for c in claims where c.fresh { claimed.insert(KeyID(c)) }
        var firstOf: [KeyID: Int] = [:]
        var running: [Int] = []
        for (i, request) in requests.enumerated() {
            guard let claim = request.claim else {
                running.append(i)
                continue
            }
            let id = KeyID(claim)
            if claimed.contains(id), firstOf[id] == nil {
                firstOf[id] = i
                running.append(i)
            }
        }
        let results = try await run(running.map { requests[$0].command })
        var replies = [WriteReply?](repeating: nil, count: requests.count)
        for (j, i) in running.enumerated() { replies[i] = WriteReply(results[j]) }
        for (i, request) in requests.enumerated() where replies[i] == nil {
            let claim = request.claim!
            let id = KeyID(claim)
            let (fingerprint, result) = firstOf[id].map { (requests[$0].claim!.fingerprint, replies[$0]!.result) } ?? stored[id]!
            replies[i] = fingerprint == claim.fingerprint ? WriteReply(result, replayed: true)
                : WriteReply(.failure(.idempotencyKeyMismatch()))
        }
        let all = firstOf.values.sorted().map { (requests[$0].claim!, StoredOutcome(replies[$0]!.result)) }
        let new = all.filter { $0.0.fresh }
        if !new.isEmpty {
            let now = nowMilliseconds()
            try await conn.execute("""
                INSERT INTO cs_keys (tenant, key, fingerprint, kind, created_id, status, exception, message, expires_at)
                SELECT tenant, key, fingerprint, kind, id, status, NULLIF(exception, ''), message, expires_at
                FROM unnest(\(new.map(\.0.tenant)), \(new.map(\.0.key)), \(new.map { ByteBuffer(bytes: $0.0.fingerprint) }),
                            \(new.map(\.1.kind)), \(new.map { $0.1.id ?? 0 }), \(new.map { $0.1.status ?? 0 }),
                            \(new.map { $0.1.exception ?? "" }), \(new.map { $0.1.message ?? "" }),
                            \(new.map { now + $0.0.lifetimeSeconds * 1000 }))
                     AS v(tenant, key, fingerprint, kind, id, status, exception, message, expires_at)
                """, logger)
        }
        let kept = all.filter { !$0.0.fresh }
        if !kept.isEmpty {
            try await conn.execute("""
                UPDATE cs_keys SET kind = v.kind, created_id = v.id, status = v.status,
                    exception = NULLIF(v.exception, ''), message = v.message
                FROM unnest(\(kept.map(\.0.tenant)), \(kept.map(\.0.key)), \(kept.map(\.1.kind)), \(kept.map { $0.1.id ?? 0 }),
                            \(kept.map { $0.1.status ?? 0 }), \(kept.map { $0.1.exception ?? "" }), \(kept.map { $0.1.message ?? "" }))
                     AS v(tenant, key, kind, id, status, exception, message)
                WHERE cs_keys.tenant = v.tenant AND cs_keys.key = v.key
                """, logger)
        }
        return replies.map { $0! }
    }

    /// Claims every new (or expired) key of the group, in (tenant, key) order; for the others
    /// reads what was stored. A key another transaction is claiming right now makes this wait
    /// for it to end (then its answer is read): concurrent retries replay rather than run twice.
    private func claim(_ claims: [IdempotencyClaim]) async throws
        -> (claimed: Set<KeyID>, stored: [KeyID: ([UInt8], Result<WriteOutcome, ContextError>)]) {
        var unique: [KeyID: IdempotencyClaim] = [:]
        for c in claims where unique[KeyID(c)] == nil { unique[KeyID(c)] = c }
        let ordered = unique.values.sorted { ($0.tenant, $0.key) < ($1.tenant, $1.key) }
        let now = nowMilliseconds()
        var claimed = Set<KeyID>()
        let rows = try await conn.query("""
            INSERT INTO cs_keys (tenant, key, fingerprint, kind, expires_at)
            SELECT tenant, key, fingerprint, -1, expires_at
            FROM unnest(\(ordered.map(\.tenant)), \(ordered.map(\.key)), \(ordered.map { ByteBuffer(bytes: $0.fingerprint) }),
                        \(ordered.map { now + $0.lifetimeSeconds * 1000 })) AS v(tenant, key, fingerprint, expires_at)
            ON CONFLICT (tenant, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, kind = -1, created_id = NULL,
                status = NULL, exception = NULL, message = NULL, expires_at = EXCLUDED.expires_at
            WHERE cs_keys.expires_at <= \(now)
            RETURNING tenant, key
            """, logger: logger)
        for try await (tenant, key) in rows.decode((String, String).self) {
            claimed.insert(KeyID(IdempotencyClaim(tenant: tenant, key: key, fingerprint: [], lifetimeSeconds: 0)))
        }
        let others = ordered.filter { !claimed.contains(KeyID($0)) }
        var stored: [KeyID: ([UInt8], Result<WriteOutcome, ContextError>)] = [:]
        guard !others.isEmpty else { return (claimed, stored) }
        let found = try await conn.query("""
            SELECT k.tenant, k.key, k.fingerprint, k.kind, k.created_id, k.status, k.exception, k.message FROM cs_keys k
            JOIN unnest(\(others.map(\.tenant)), \(others.map(\.key))) AS v(tenant, key) ON k.tenant = v.tenant AND k.key = v.key
            """, logger: logger)
        for try await (tenant, key, fingerprint, kind, id, status, exception, message) in found.decode(
            (String, String, ByteBuffer, Int64, Int64?, Int64?, String?, String?).self) {
            let outcome = StoredOutcome(kind: kind, id: id, status: status, exception: exception, message: message)
            stored[KeyID(IdempotencyClaim(tenant: tenant, key: key, fingerprint: [], lifetimeSeconds: 0))] =
                (Array(fingerprint.readableBytesView), outcome.result)
        }
        guard stored.count == others.count else {
            throw TaskStoreError(.failed, "an idempotency key vanished between its claim and its read")
        }
        return (claimed, stored)
    }

    mutating func run(_ commands: [WriteCommand]) async throws -> [Result<WriteOutcome, ContextError>] {
        // The one lock order of the store: the service counter, then services by id.
        var nextServiceID = try await allocateServices(commands)
        try await prepare(commands)
        var results: [Result<WriteOutcome, ContextError>] = []
        results.reserveCapacity(commands.count)
        for command in commands {
            switch command {
            case .startService(let tenant, let r):
                let id = nextServiceID
                nextServiceID += 1
                services[id] = Service(tenant: tenant, lastState: 0, lastTask: 0, pending: true)
                newServices.append(Row(serviceID: id, id: id, resource: r))
                results.append(.success(.created(id)))
            case .startState(let tenant, let sid, let r):
                results.append(Result { () throws(ContextError) in
                    var service = try self.service(sid, tenant)
                    guard service.lastState < ResourceID.maxChildID else { throw .idSpaceExhausted(.state, serviceID: sid) }
                    service.lastState += 1
                    service.dirty = true
                    services[sid] = service
                    states.insert([sid, service.lastState])
                    newStates.append(Row(serviceID: sid, id: service.lastState, resource: r))
                    return .created(service.lastState)
                })
            case .startTask(let tenant, let sid, let r):
                results.append(Result { () throws(ContextError) in
                    var service = try self.service(sid, tenant)
                    if let state = r.stateID, !states.contains([sid, state]) { throw .notFound(.state, state) }
                    guard service.lastTask < ResourceID.maxChildID else { throw .idSpaceExhausted(.task, serviceID: sid) }
                    service.lastTask += 1
                    service.dirty = true
                    services[sid] = service
                    newTasks.append(Row(serviceID: sid, id: service.lastTask, resource: r))
                    return .created(service.lastTask)
                })
            case .endService, .deleteService, .endState, .endTask:
                // Against the database: the rows pending before it are written first, so it
                // sees everything the group did before it.
                try await flush()
                do {
                    results.append(.success(try await PostgresTaskStore.applyOne(command, conn, logger)))
                    if case .deleteService(_, let sid) = command {
                        services[sid]?.exists = false
                        states = states.filter { $0[0] != sid }
                    }
                } catch let error as ContextError {
                    results.append(.failure(error))
                }
            }
        }
        try await flush()
        return results
    }

    private func service(_ sid: Int64, _ tenant: String) throws(ContextError) -> Service {
        guard let service = services[sid], service.exists, service.tenant == tenant else { throw .notFound(.service, sid) }
        return service
    }

    /// Locks and reads every existing service the commands name (ascending ids), and the
    /// states their task starts name.
    private mutating func prepare(_ commands: [WriteCommand]) async throws {
        var ids = Set<Int64>()
        var statePairs: [(Int64, Int64)] = []
        for command in commands {
            switch command {
            case .startService: break
            case .endService(_, let sid, _), .deleteService(_, let sid), .startState(_, let sid, _), .endState(_, let sid, _, _),
                 .endTask(_, let sid, _, _):
                ids.insert(sid)
            case .startTask(_, let sid, let r):
                ids.insert(sid)
                if let state = r.stateID { statePairs.append((sid, state)) }
            }
        }
        guard !ids.isEmpty else { return }
        let sorted = ids.sorted()
        let rows = try await conn.query("""
            SELECT service_id, tenant, last_state_id::bigint, last_task_id::bigint FROM services
            WHERE service_id = ANY(\(sorted)) ORDER BY service_id FOR UPDATE
            """, logger: logger)
        for try await (sid, tenant, lastState, lastTask) in rows.decode((Int64, String, Int64, Int64).self) {
            services[sid] = Service(tenant: tenant, lastState: lastState, lastTask: lastTask)
        }
        guard !statePairs.isEmpty else { return }
        let found = try await conn.query("""
            SELECT s.service_id, s.state_id::bigint FROM states s
            JOIN unnest(\(statePairs.map(\.0)), \(statePairs.map(\.1))) AS p(service_id, state_id)
              ON s.service_id = p.service_id AND s.state_id = p.state_id
            """, logger: logger)
        for try await (sid, state) in found.decode((Int64, Int64).self) {
            states.insert([sid, state])
        }
    }

    /// Takes the ids of every service start of the group from the counter row, in one update.
    /// Service starts make no check of their own, so every one of them uses its id.
    private func allocateServices(_ commands: [WriteCommand]) async throws -> Int64 {
        let count = commands.reduce(0) { n, c in if case .startService = c { n + 1 } else { n } }
        guard count > 0 else { return 0 }
        var last: Int64?
        for try await v in try await conn.query(
            "UPDATE cs_counters SET value = value + \(Int64(count)) WHERE name = 'service' RETURNING value",
            logger: logger).decode(Int64.self) { last = v }
        guard let last else { throw TaskStoreError(.failed, "the service counter row is missing") }
        return last - Int64(count) + 1
    }

    /// Writes the pending rows and counters: one statement per table.
    private mutating func flush() async throws {
        if !newServices.isEmpty {
            let rows = newServices
            let counters = rows.map { services[$0.id]! }
            try await conn.execute("""
                INSERT INTO services (service_id, tenant, type_text, head, started, ext, last_state_id, last_task_id)
                SELECT id, tenant, CASE WHEN has_type THEN type_text END, head, started, ext, last_state, last_task
                FROM unnest(\(rows.map(\.id)), \(counters.map(\.tenant)), \(rows.map { $0.resource.typeText != nil }),
                            \(rows.map { $0.resource.typeText ?? "" }), \(rows.map { ByteBuffer(bytes: $0.resource.head) }),
                            \(rows.map { ByteBuffer(bytes: $0.resource.started) }), \(rows.map { ByteBuffer(bytes: $0.resource.extensions) }),
                            \(counters.map(\.lastState)), \(counters.map(\.lastTask)))
                     AS v(id, tenant, has_type, type_text, head, started, ext, last_state, last_task)
                """, logger)
            for row in rows {
                services[row.id]?.pending = false
                services[row.id]?.dirty = false
            }
            newServices.removeAll()
        }
        if !newStates.isEmpty {
            try await conn.execute(Self.insert(newStates, sql: """
                INSERT INTO states (service_id, state_id, type_text, head, started, ext)
                SELECT sid, id, CASE WHEN has_type THEN type_text END, head, started, ext
                """), logger)
            newStates.removeAll()
        }
        if !newTasks.isEmpty {
            try await conn.execute(Self.insert(newTasks, sql: """
                INSERT INTO tasks (service_id, task_id, state_id, type_text, head, started, ext)
                SELECT sid, id, NULLIF(state, 0), CASE WHEN has_type THEN type_text END, head, started, ext
                """), logger)
            newTasks.removeAll()
        }
        let dirty = services.filter { $0.value.dirty && !$0.value.pending && $0.value.exists }.sorted { $0.key < $1.key }
        if !dirty.isEmpty {
            try await conn.execute("""
                UPDATE services SET last_state_id = v.last_state, last_task_id = v.last_task
                FROM unnest(\(dirty.map(\.key)), \(dirty.map(\.value.lastState)), \(dirty.map(\.value.lastTask)))
                     AS v(id, last_state, last_task)
                WHERE services.service_id = v.id
                """, logger)
            for (sid, _) in dirty { services[sid]?.dirty = false }
        }
    }

    /// `sql` (an INSERT … SELECT of the columns below) over the rows, as arrays: state id 0
    /// stands for none (ids start at 1), `has_type` for a type that is there.
    private static func insert(_ rows: [Row], sql: String) -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: sql + """

            FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::boolean[], $5::text[], $6::bytea[], $7::bytea[], $8::bytea[])
                 AS v(sid, id, state, has_type, type_text, head, started, ext)
            """)
        query.binds.append(rows.map(\.serviceID))
        query.binds.append(rows.map(\.id))
        query.binds.append(rows.map { $0.resource.stateID ?? 0 })
        query.binds.append(rows.map { $0.resource.typeText != nil })
        query.binds.append(rows.map { $0.resource.typeText ?? "" })
        query.binds.append(rows.map { ByteBuffer(bytes: $0.resource.head) })
        query.binds.append(rows.map { ByteBuffer(bytes: $0.resource.started) })
        query.binds.append(rows.map { ByteBuffer(bytes: $0.resource.extensions) })
        return query
    }
}

extension PostgresConnection {
    /// Runs a statement and reads its rows to the end, so its errors surface here
    /// (STACK-NOTES-2: `query` can return before the statement has finished).
    fileprivate func run(_ query: PostgresQuery, _ logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }

    fileprivate func execute(_ query: PostgresQuery, _ logger: Logger) async throws {
        try await run(query, logger)
    }

    /// The first column of the first row, as a 64-bit integer; nil for no row.
    fileprivate func int(_ query: PostgresQuery, _ logger: Logger) async throws -> Int64? {
        var value: Int64?
        for try await v in try await self.query(query, logger: logger).decode(Int64.self) where value == nil {
            value = v
        }
        return value
    }

    /// Rows of (id, head, started, completed, ext).
    fileprivate func records(
        _ kind: ResourceKind, _ sid: Int64, _ query: PostgresQuery, _ logger: Logger
    ) async throws -> [ResourceRecord] {
        var out: [ResourceRecord] = []
        for try await (id, head, started, completed, ext) in try await self.query(query, logger: logger)
            .decode((Int64, ByteBuffer, ByteBuffer, ByteBuffer?, ByteBuffer).self) {
            out.append(ResourceRecord(
                kind: kind, serviceID: sid, id: id, head: Array(head.readableBytesView),
                started: Array(started.readableBytesView), completed: completed.map { Array($0.readableBytesView) },
                extensions: Array(ext.readableBytesView)))
        }
        return out
    }
}

/// Gives up on `body` after `timeout` (it keeps running, unobserved).
func withTimeout<T: Sendable>(
    _ timeout: Duration, what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let work = Task { try await body() }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let answered = NIOLockedValueBox(false)
        @Sendable func answer(_ result: Result<T, any Error>) {
            let first = answered.withLockedValue { done in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(with: result) }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            if Task.isCancelled { return }
            work.cancel()
            answer(.failure(TaskStoreError(.unavailable, "\(what) took longer than \(timeout)")))
        }
        Task {
            let result = await work.result
            timer.cancel()
            answer(result)
        }
    }
}
