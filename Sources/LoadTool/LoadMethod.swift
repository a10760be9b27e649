/// The operations the load tool calls (§2), with their gRPC method names.
public enum LoadMethod: Int, Sendable, CaseIterable, CustomStringConvertible {
    case startService, startState, startTask, completeTask, completeState, queryService, completeService

    /// The RPC's name in `context_services.proto`.
    public var description: String {
        switch self {
        case .startService: "StartService"
        case .startState: "StartState"
        case .startTask: "StartTask"
        case .completeTask: "CompleteTask"
        case .completeState: "CompleteState"
        case .queryService: "QueryService"
        case .completeService: "CompleteService"
        }
    }

    /// gRPC PROTOCOL-HTTP2.md: `/{package}.{service}/{method}`.
    var grpcPath: String { "/genesys.cs.v1.ContextServices/\(description)" }

    /// Whether the answer carries the new resource's id, which later calls need.
    var createsResource: Bool { self == .startService || self == .startState || self == .startTask }
}

/// One call: a method with the ids it names and the step whose payload it carries.
struct LoadCall: Sendable {
    var method: LoadMethod
    var serviceID: Int64 = 0
    /// StartTask: the state the task belongs to (0: none). CompleteState: the state.
    var stateID: Int32 = 0
    /// CompleteTask: the task.
    var taskID: Int32 = 0
    /// Index of the `JourneyPlan` step whose content the body carries (start-task: 0).
    var step: Int = 0
}
