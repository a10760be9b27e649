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
/// Errors: a `ContextError` for the contract's failures (404, 409); any other error means the
/// storage itself failed and nothing of the call was stored.
public protocol TaskStore: Sendable {
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
