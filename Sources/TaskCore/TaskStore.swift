import ContextModel

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
public protocol TaskStore: Sendable {
    /// The store's identity: a random id written once, when the store is created, and read
    /// back by every process that opens it. Two cores may share the work of one gateway only
    /// if they report the same identity (`GET {base}/store`, README "Scale-out").
    var identity: StoreIdentity { get }
    func write(_ commands: [WriteCommand]) async throws -> [Result<WriteOutcome, ContextError>]
    func service(tenant: String, serviceID: Int64, include: ServiceInclude) async throws -> ResourceView
    func state(tenant: String, serviceID: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView
    func task(tenant: String, serviceID: Int64, taskID: Int64) async throws -> ResourceRecord
    func tasks(tenant: String, serviceID: Int64, filter: TaskFilter) async throws -> [ResourceRecord]
    func close() async throws
}

extension TaskStore {
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

    /// The body of `GET {base}/store`: `{"store_id":"…","engine":"…"}`.
    public var jsonBody: [UInt8] {
        var out: [UInt8] = []
        out.append(UInt8(ascii: "{"))
        JSONWriter.appendKey("store_id", to: &out)
        JSONWriter.appendString(id, to: &out)
        out.append(UInt8(ascii: ","))
        JSONWriter.appendKey("engine", to: &out)
        JSONWriter.appendString(engine, to: &out)
        out.append(UInt8(ascii: "}"))
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
