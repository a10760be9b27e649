import ContextModel
#if canImport(Glibc)
internal import Glibc
#endif

/// A resource about to be stored: the fragments its start event renders to (`Event`).
public struct NewResource: Sendable, Equatable {
    /// The type's filter text (`BusinessAttribute.filterText`), for `task_types=`.
    public var typeText: String?
    /// Tasks only: the state the task belongs to; it must exist in the same service.
    public var stateID: Int64?
    public var head: [UInt8]
    public var started: [UInt8]
    public var extensions: [UInt8]

    public init(typeText: String?, stateID: Int64?, head: [UInt8], started: [UInt8], extensions: [UInt8]) {
        self.typeText = typeText
        self.stateID = stateID
        self.head = head
        self.started = started
        self.extensions = extensions
    }

    public init(_ event: Event, processedAt: Timestamp) {
        self.init(
            typeText: event.type?.filterText,
            stateID: event.stateID.map(Int64.init),
            head: event.resourceMembers,
            started: event.eventMembers(processedAt: processedAt),
            extensions: event.resourceExtensions
        )
    }
}

/// One write of the contract. Every command names its tenant (§6): a service of another
/// tenant is "not found".
public enum WriteCommand: Sendable, Equatable {
    case startService(tenant: String, NewResource)
    case endService(tenant: String, serviceID: Int64, completed: [UInt8])
    case deleteService(tenant: String, serviceID: Int64)
    case startState(tenant: String, serviceID: Int64, NewResource)
    case endState(tenant: String, serviceID: Int64, stateID: Int64, completed: [UInt8])
    case startTask(tenant: String, serviceID: Int64, NewResource)
    case endTask(tenant: String, serviceID: Int64, taskID: Int64, completed: [UInt8])
}

public enum WriteOutcome: Sendable, Equatable {
    /// A start: the id the store allocated.
    case created(Int64)
    /// An end or a delete.
    case done
}

/// Durable storage of services, states and tasks.
///
/// Writes come as a list of commands applied in order in **one** transaction (one commit,
/// one fsync), each succeeding or failing on its own: a failed command changes nothing and
/// does not spoil the others. `write` returns only once the transaction is durable, so a
/// caller may acknowledge every `.success` it gets. Ids are allocated inside the transaction
/// that inserts them (§1): service ids globally, state and task ids per service.
///
/// Errors: a `ContextError` for the contract's failures (404, 409); a `TaskStoreError` when the
/// storage itself failed, saying whether anything of the call may have been stored.
/// An idempotency key a write carries (README, "Exactly once"): the store keeps (tenant, key)
/// → fingerprint and outcome, written in the same transaction as the write.
public struct IdempotencyClaim: Sendable, Equatable {
    public var tenant: String
    public var key: String
    /// SHA-256 of the request (operation, ids, body): the same key with another request is
    /// refused (422).
    public var fingerprint: [UInt8]
    /// How long the store keeps it, seconds: a day for a client's key, minutes for one the
    /// gateway made for its own resends.
    public var lifetimeSeconds: Int64
    /// A gateway's key sent for the first time: unique by construction (a random process
    /// prefix and a counter), so the store writes it without looking it up first. Only the
    /// gateway's own first sends say so; a resend looks its key up like any other.
    public var fresh: Bool

    public init(tenant: String, key: String, fingerprint: [UInt8], lifetimeSeconds: Int64, fresh: Bool = false) {
        self.tenant = tenant
        self.key = key
        self.fingerprint = fingerprint
        self.lifetimeSeconds = lifetimeSeconds
        self.fresh = fresh
    }
}

/// A write and, if it has one, its key.
public struct WriteRequest: Sendable, Equatable {
    public var command: WriteCommand
    public var claim: IdempotencyClaim?

    public init(_ command: WriteCommand, claim: IdempotencyClaim? = nil) {
        self.command = command
        self.claim = claim
    }
}

/// What a write came to.
public struct WriteReply: Sendable, Equatable {
    /// The outcome: applied now, or the one stored under the key (a replay), refusals included.
    public var result: Result<WriteOutcome, ContextError>
    /// The key was seen before with the same request: nothing was written now.
    public var replayed: Bool

    public init(_ result: Result<WriteOutcome, ContextError>, replayed: Bool = false) {
        self.result = result
        self.replayed = replayed
    }
}

public protocol TaskStore: Sendable {
    /// The store's identity: a random id written once, when the store is created, and read
    /// back by every process that opens it. Two cores may share the work of one gateway only
    /// if they report the same identity (`GET {base}/store`, README "Scale-out").
    var identity: StoreIdentity { get }
    /// Writes with keys: a key seen before (same tenant, not expired) answers what was stored
    /// under it, or 422 when its fingerprint differs, and writes nothing; a new key is stored
    /// with the outcome (success or the contract's refusal) in the same transaction.
    func write(_ requests: [WriteRequest]) async throws -> [WriteReply]
    /// Deletes expired keys, at most `limit`; returns how many. Called in the background.
    func purgeExpiredKeys(limit: Int) async throws -> Int
    func service(tenant: String, serviceID: Int64, include: ServiceInclude) async throws -> ResourceView
    func state(tenant: String, serviceID: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView
    func task(tenant: String, serviceID: Int64, taskID: Int64) async throws -> ResourceRecord
    func tasks(tenant: String, serviceID: Int64, filter: TaskFilter) async throws -> [ResourceRecord]
    func close() async throws
}

extension TaskStore {
    /// Writes without keys.
    public func write(_ commands: [WriteCommand]) async throws -> [Result<WriteOutcome, ContextError>] {
        try await write(commands.map { WriteRequest($0) }).map(\.result)
    }

    /// One command in its own transaction.
    public func write(_ command: WriteCommand) async throws -> WriteOutcome {
        let results = try await write([command])
        return try results[0].get()
    }
}

extension ContextError {
    static func alreadyCompleted(_ kind: ResourceKind, _ id: Int64) -> ContextError {
        .conflict("\(kind.name) \(id) is already completed")
    }
}

/// Who a store is (`TaskStore.identity`).
public struct StoreIdentity: Sendable, Equatable {
    /// Random, made when the store was created (a UUID's text).
    public var id: String
    /// `sqlite`, `postgres` or `memory`: for operators, never compared.
    public var engine: String

    public init(id: String, engine: String) {
        self.id = id
        self.engine = engine
    }

    /// The body of `GET {base}/store`: `{"store_id":"…","engine":"…","idempotency":true}`.
    /// `idempotency`: the core keeps idempotency keys, so a gateway may resend a write whose
    /// answer it lost (README, "Exactly once").
    public var jsonBody: [UInt8] {
        var out: [UInt8] = []
        out.append(UInt8(ascii: "{"))
        JSONWriter.appendKey("store_id", to: &out)
        JSONWriter.appendString(id, to: &out)
        out.append(UInt8(ascii: ","))
        JSONWriter.appendKey("engine", to: &out)
        JSONWriter.appendString(engine, to: &out)
        out += Array(#","idempotency":true}"#.utf8)
        return out
    }
}

/// The storage itself failed (not a refusal of the contract). What the caller may tell its
/// client depends on whether the write can have been applied; `ContextService` maps each kind
/// to an answer (README, "Storage failures").
public struct TaskStoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The store could not be reached or gave up on the transaction before committing
        /// (connection lost, timed out, restarting): nothing was applied; retry later.
        case unavailable
        /// The store is saturated (SQLite's lock wait ran out): nothing was applied; retry.
        case busy
        /// The connection broke while the commit was under way: the writes may or may not
        /// have been applied. Only an idempotency key can tell (issue 13).
        case outcomeUnknown
        /// Any other failure of the storage (a bug, a full disk): nothing was applied.
        case failed
    }

    public var kind: Kind
    /// For the log; never sent to a client.
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind): \(detail)" }
}

/// A write's outcome as the stores keep it under an idempotency key: created with an id, done,
/// or refused with the contract's error.
struct StoredOutcome: Sendable, Equatable {
    static let created: Int64 = 0, done: Int64 = 1, refused: Int64 = 2

    var kind: Int64
    var id: Int64?
    var status: Int64?
    var exception: String?
    var message: String?

    init(kind: Int64, id: Int64?, status: Int64?, exception: String?, message: String?) {
        self.kind = kind
        self.id = id
        self.status = status
        self.exception = exception
        self.message = message
    }

    init(_ result: Result<WriteOutcome, ContextError>) {
        switch result {
        case .success(.created(let id)): self.init(kind: Self.created, id: id, status: nil, exception: nil, message: nil)
        case .success(.done): self.init(kind: Self.done, id: nil, status: nil, exception: nil, message: nil)
        case .failure(let e): self.init(kind: Self.refused, id: nil, status: Int64(e.status), exception: e.exception, message: e.message)
        }
    }

    var result: Result<WriteOutcome, ContextError> {
        switch kind {
        case Self.created: .success(.created(id ?? 0))
        case Self.done: .success(.done)
        default: .failure(ContextError(status: Int(status ?? 500), exception: exception ?? "InternalException", message: message ?? ""))
        }
    }
}

/// Wall-clock milliseconds, for key expiry.
func nowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
