import ContextModel
import NIOConcurrencyHelpers

/// A store that keeps everything in process memory: for tests and for measuring the gateway
/// without storage cost. Not durable, so never the default. Same contract as
/// `SQLiteTaskStore`: the store conformance tests run against both.
public final class InMemoryTaskStore: TaskStore {
    private struct Service {
        var tenant: String
        var record: ResourceRecord
        var typeText: String?
        var lastStateID: Int64 = 0
        var lastTaskID: Int64 = 0
        var states: [Int64: ResourceRecord] = [:]
        var tasks: [Int64: (record: ResourceRecord, stateID: Int64?, typeText: String?)] = [:]
    }

    private struct KeyKey: Hashable {
        var tenant: String
        var key: String
    }

    private struct State {
        var lastServiceID: Int64 = 0
        var services: [Int64: Service] = [:]
        var keys: [KeyKey: (fingerprint: [UInt8], outcome: StoredOutcome, expiresAt: Int64)] = [:]
    }

    private let state = NIOLockedValueBox(State())
    /// A new store in every process: two in-memory cores never share a gateway.
    public let identity: StoreIdentity

    public init() {
        var random = SystemRandomNumberGenerator()
        let id = (0..<4).map { _ in String(random.next() as UInt32, radix: 16) }.joined(separator: "-")
        identity = StoreIdentity(id: "memory-" + id, engine: "memory")
    }

    /// Sets a service's counters, e.g. next to the 32-bit limit: for the tests of id exhaustion
    /// (`@testable`), which cannot reach 2^31 by starting tasks. Not part of the store's API.
    func setCounters(serviceID: Int64, lastStateID: Int64? = nil, lastTaskID: Int64? = nil) {
        state.withLockedValue { s in
            if let v = lastStateID { s.services[serviceID]?.lastStateID = v }
            if let v = lastTaskID { s.services[serviceID]?.lastTaskID = v }
        }
    }

    public func close() async throws {}

    public func write(_ requests: [WriteRequest]) async throws -> [WriteReply] {
        let now = nowMilliseconds()
        return state.withLockedValue { s in
            requests.map { request in
                let id = request.claim.map { KeyKey(tenant: $0.tenant, key: $0.key) }
                if let claim = request.claim, !claim.fresh, let id, let known = s.keys[id], known.expiresAt > now {
                    guard known.fingerprint == claim.fingerprint else { return WriteReply(.failure(.idempotencyKeyMismatch())) }
                    return WriteReply(known.outcome.result, replayed: true)
                }
                let result = Result { () throws(ContextError) in try Self.apply(request.command, &s) }
                if let claim = request.claim, let id {
                    s.keys[id] = (claim.fingerprint, StoredOutcome(result), now + claim.lifetimeSeconds * 1000)
                }
                return WriteReply(result)
            }
        }
    }

    public func purgeExpiredKeys(limit: Int) async throws -> Int {
        let now = nowMilliseconds()
        return state.withLockedValue { s in
            let expired = s.keys.filter { $0.value.expiresAt <= now }.prefix(limit).map(\.key)
            for k in expired { s.keys[k] = nil }
            return expired.count
        }
    }

    /// Each command checks everything before it changes anything, so a refusal changes nothing.
    private static func apply(_ command: WriteCommand, _ s: inout State) throws(ContextError) -> WriteOutcome {
        switch command {
        case .startService(let tenant, let r):
            s.lastServiceID += 1
            let id = s.lastServiceID
            s.services[id] = Service(
                tenant: tenant,
                record: ResourceRecord(kind: .service, serviceID: id, id: id, head: r.head, started: r.started,
                                       completed: nil, extensions: r.extensions),
                typeText: r.typeText)
            return .created(id)

        case .endService(let tenant, let sid, let completed):
            return try mutate(&s, tenant, sid) { service throws(ContextError) in
                guard service.record.isActive else { throw .alreadyCompleted(.service, sid) }
                service.record.completed = completed
                return .done
            }

        case .deleteService(let tenant, let sid):
            guard s.services[sid]?.tenant == tenant else { throw .notFound(.service, sid) }
            s.services[sid] = nil
            return .done

        case .startState(let tenant, let sid, let r):
            return try mutate(&s, tenant, sid) { service throws(ContextError) in
                let id = service.lastStateID + 1
                guard id <= ResourceID.maxChildID else { throw .idSpaceExhausted(.state, serviceID: sid) }
                service.lastStateID = id
                service.states[id] = ResourceRecord(kind: .state, serviceID: sid, id: id, head: r.head,
                                                    started: r.started, completed: nil, extensions: r.extensions)
                return .created(id)
            }

        case .startTask(let tenant, let sid, let r):
            return try mutate(&s, tenant, sid) { service throws(ContextError) in
                let id = service.lastTaskID + 1
                guard id <= ResourceID.maxChildID else { throw .idSpaceExhausted(.task, serviceID: sid) }
                if let st = r.stateID, service.states[st] == nil { throw .notFound(.state, st) }
                service.lastTaskID = id
                let record = ResourceRecord(kind: .task, serviceID: sid, id: id, head: r.head, started: r.started,
                                            completed: nil, extensions: r.extensions)
                service.tasks[id] = (record, r.stateID, r.typeText)
                return .created(id)
            }

        case .endState(let tenant, let sid, let stid, let completed):
            return try mutate(&s, tenant, sid) { service throws(ContextError) in
                guard let record = service.states[stid] else { throw .notFound(.state, stid) }
                guard record.isActive else { throw .alreadyCompleted(.state, stid) }
                service.states[stid]!.completed = completed
                return .done
            }

        case .endTask(let tenant, let sid, let tid, let completed):
            return try mutate(&s, tenant, sid) { service throws(ContextError) in
                guard let task = service.tasks[tid] else { throw .notFound(.task, tid) }
                guard task.record.isActive else { throw .alreadyCompleted(.task, tid) }
                service.tasks[tid]!.record.completed = completed
                return .done
            }
        }
    }

    /// Runs `body` on a service in place. The service is moved out of the table while it
    /// runs, so its dictionaries are uniquely referenced and grow without being copied (a
    /// copy per start made each start cost O(tasks in the service)).
    private static func mutate(
        _ s: inout State, _ tenant: String, _ sid: Int64,
        _ body: (inout Service) throws(ContextError) -> WriteOutcome
    ) throws(ContextError) -> WriteOutcome {
        guard s.services[sid]?.tenant == tenant, var service = s.services.removeValue(forKey: sid) else {
            throw .notFound(.service, sid)
        }
        defer { s.services[sid] = service }
        return try body(&service)
    }

    private func read<T>(_ tenant: String, _ sid: Int64, _ body: (Service) throws(ContextError) -> T) throws(ContextError) -> T {
        let service = state.withLockedValue { $0.services[sid] }
        guard let service, service.tenant == tenant else { throw .notFound(.service, sid) }
        return try body(service)
    }

    public func service(tenant: String, serviceID sid: Int64, include: ServiceInclude) async throws -> ResourceView {
        try read(tenant, sid) { service in
            var view = ResourceView(record: service.record)
            let states = service.states.values.sorted { $0.id < $1.id }
            let tasks = service.tasks.values.map(\.record).sorted { $0.id < $1.id }
            if include.activeStates { view.children.append(("active_states", states.filter(\.isActive))) }
            if include.completedStates { view.children.append(("completed_states", states.filter { !$0.isActive })) }
            if include.activeTasks { view.children.append(("active_tasks", tasks.filter(\.isActive))) }
            if include.completedTasks { view.children.append(("completed_tasks", tasks.filter { !$0.isActive })) }
            return view
        }
    }

    public func state(tenant: String, serviceID sid: Int64, stateID: Int64, include: StateInclude) async throws -> ResourceView {
        try read(tenant, sid) { service throws(ContextError) in
            guard let record = service.states[stateID] else { throw .notFound(.state, stateID) }
            var view = ResourceView(record: record)
            let tasks = service.tasks.values.filter { $0.stateID == stateID }.map(\.record).sorted { $0.id < $1.id }
            if include.activeTasks { view.children.append(("active_tasks", tasks.filter(\.isActive))) }
            if include.completedTasks { view.children.append(("completed_tasks", tasks.filter { !$0.isActive })) }
            return view
        }
    }

    public func task(tenant: String, serviceID sid: Int64, taskID: Int64) async throws -> ResourceRecord {
        try read(tenant, sid) { service throws(ContextError) in
            guard let task = service.tasks[taskID] else { throw .notFound(.task, taskID) }
            return task.record
        }
    }

    public func tasks(tenant: String, serviceID sid: Int64, filter: TaskFilter) async throws -> [ResourceRecord] {
        try read(tenant, sid) { service in
            service.tasks.values.filter { task in
                switch filter.status {
                case .all: break
                case .active: if !task.record.isActive { return false }
                case .completed: if task.record.isActive { return false }
                }
                if let st = filter.stateID, task.stateID != st { return false }
                if !filter.taskTypes.isEmpty {
                    guard let t = task.typeText, filter.taskTypes.contains(t) else { return false }
                }
                return true
            }.map(\.record).sorted { $0.id < $1.id }
        }
    }
}
