/// The three resources of CONTEXT-SERVICES.md §1.
public enum ResourceKind: Sendable, Hashable, CaseIterable {
    case service
    case state
    case task

    /// The word the vendor's messages use: "There are no service found for : 7".
    public var name: String {
        switch self {
        case .service: "service"
        case .state: "state"
        case .task: "task"
        }
    }

    /// `service_id`, `state_id`, `task_id`.
    public var idKey: String {
        switch self {
        case .service: "service_id"
        case .state: "state_id"
        case .task: "task_id"
        }
    }

    /// The business attribute that types the resource: `service_type`, `state_type`, `task_type`.
    public var typeKey: String {
        switch self {
        case .service: "service_type"
        case .state: "state_type"
        case .task: "task_type"
        }
    }
}

/// Which event of a resource's life a body describes.
public enum EventPhase: Sendable, Hashable {
    case start
    case end

    var name: String { self == .start ? "start" : "end" }
}

/// "long or string" (CONTEXT-SERVICES.md §3): a configuration DB id or a value name.
public enum BusinessAttribute: Sendable, Hashable {
    case id(Int64)
    case name(String)

    /// The text used to filter by type (`task_types=a,b`): the decimal id or the name.
    public var filterText: String {
        switch self {
        case .id(let v): String(v)
        case .name(let s): s
        }
    }

    func append<Out: JSONOutput>(to out: inout Out) {
        switch self {
        case .id(let v): JSONWriter.int(v, to: &out)
        case .name(let s): JSONWriter.string(s, to: &out)
        }
    }
}

/// The id bounds of CONTEXT-SERVICES.md §1. 0 is never issued: it is protobuf's "unset".
public enum ResourceID {
    public static let maxChildID: Int64 = Int64(Int32.max)
    public static let childRange: ClosedRange<Int64> = 1...maxChildID
    public static let serviceRange: ClosedRange<Int64> = 1...Int64.max
}
