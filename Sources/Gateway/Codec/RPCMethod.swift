/// The RPCs the gateway serves, named by the gRPC `:path` (gRPC PROTOCOL-HTTP2.md: Requests,
/// "/" Service-Name "/" {method name}): `/genesys.cs.v1.ContextServices/StartTask` etc.
enum RPCMethod: CaseIterable, Sendable {
    case startService, completeService, queryService, deleteService
    case startState, completeState, queryState
    case startTask, completeTask, queryTask, queryTasks
    case healthCheck, healthWatch

    /// Exact, case-sensitive match of the whole `:path`; nil for any other path.
    init?(path: some StringProtocol) {
        let utf8 = path.utf8
        let found: RPCMethod?? = utf8.withContiguousStorageIfAvailable { RPCMethod(pathBytes: $0) }
        if let found {
            guard let method = found else { return nil }
            self = method
        } else {
            guard let method = RPCMethod(pathBytes: Array(utf8)) else { return nil }
            self = method
        }
    }

    private init?(pathBytes: some Collection<UInt8>) {
        // Thirteen candidates: a length check rejects most at once; no String is made.
        for method in RPCMethod.allCases {
            let candidate = method.path.utf8
            if candidate.count == pathBytes.count && candidate.elementsEqual(pathBytes) {
                self = method
                return
            }
        }
        return nil
    }

    var path: String {
        switch self {
        case .startService: "/genesys.cs.v1.ContextServices/StartService"
        case .completeService: "/genesys.cs.v1.ContextServices/CompleteService"
        case .queryService: "/genesys.cs.v1.ContextServices/QueryService"
        case .deleteService: "/genesys.cs.v1.ContextServices/DeleteService"
        case .startState: "/genesys.cs.v1.ContextServices/StartState"
        case .completeState: "/genesys.cs.v1.ContextServices/CompleteState"
        case .queryState: "/genesys.cs.v1.ContextServices/QueryState"
        case .startTask: "/genesys.cs.v1.ContextServices/StartTask"
        case .completeTask: "/genesys.cs.v1.ContextServices/CompleteTask"
        case .queryTask: "/genesys.cs.v1.ContextServices/QueryTask"
        case .queryTasks: "/genesys.cs.v1.ContextServices/QueryTasks"
        case .healthCheck: "/grpc.health.v1.Health/Check"
        case .healthWatch: "/grpc.health.v1.Health/Watch"
        }
    }

    /// The request message's name, for error messages.
    var requestName: String {
        switch self {
        case .startService: "StartServiceRequest"
        case .completeService: "CompleteServiceRequest"
        case .queryService: "QueryServiceRequest"
        case .deleteService: "DeleteServiceRequest"
        case .startState: "StartStateRequest"
        case .completeState: "CompleteStateRequest"
        case .queryState: "QueryStateRequest"
        case .startTask: "StartTaskRequest"
        case .completeTask: "CompleteTaskRequest"
        case .queryTask: "QueryTaskRequest"
        case .queryTasks: "QueryTasksRequest"
        case .healthCheck, .healthWatch: "HealthCheckRequest"
        }
    }

    /// Whether the method is answered by the gateway itself (grpc.health.v1) rather than
    /// forwarded to the core.
    var isHealth: Bool {
        self == .healthCheck || self == .healthWatch
    }
}
