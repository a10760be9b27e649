extension RESTRoute {
    /// The operation's name as the gRPC API spells it (`StartTask`): the bounded `operation`
    /// label of metrics and the `method` of log lines, whichever protocol the call came by.
    public var operationName: String {
        switch self {
        case .startService: "StartService"
        case .endService: "CompleteService"
        case .queryService: "QueryService"
        case .deleteService: "DeleteService"
        case .startState: "StartState"
        case .endState: "CompleteState"
        case .queryState: "QueryState"
        case .startTask: "StartTask"
        case .endTask: "CompleteTask"
        case .queryTask: "QueryTask"
        case .queryTasks: "QueryTasks"
        }
    }

    /// Every `operationName`, in the order of §2.
    public static let operationNames = ["StartService", "CompleteService", "QueryService", "DeleteService", "StartState",
                                        "CompleteState", "QueryState", "StartTask", "CompleteTask", "QueryTask", "QueryTasks"]
}
