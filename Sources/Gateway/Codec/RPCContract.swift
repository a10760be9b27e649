import ContextModel

/// Which operation of the contract (CONTEXT-SERVICES.md §2) an RPC is: the one thing about an
/// RPC the .proto does not say. Everything else (path, messages, fields, which id names the
/// resource) comes from the generated table and the contract's own vocabulary (`ResourceKind`).
enum RPCContract: Sendable, Equatable {
    /// POST of a new resource: the body is a start event.
    case start(ResourceKind)
    /// PUT .../end: the body is an end event.
    case end(ResourceKind)
    /// GET of one resource, with include flags for its arrays.
    case query(ResourceKind)
    /// DELETE of one resource.
    case delete(ResourceKind)
    /// GET of a service's tasks, filtered.
    case queryTasks

    /// The hand-written table, keyed by the RPC's name in the .proto. An RPC of proto/ with no
    /// entry (grpc.health.v1) is answered by the gateway itself.
    static let byName: [String: RPCContract] = [
        "StartService": .start(.service),
        "CompleteService": .end(.service),
        "QueryService": .query(.service),
        "DeleteService": .delete(.service),
        "StartState": .start(.state),
        "CompleteState": .end(.state),
        "QueryState": .query(.state),
        "StartTask": .start(.task),
        "CompleteTask": .end(.task),
        "QueryTask": .query(.task),
        "QueryTasks": .queryTasks,
    ]

    private static let byMethod: [RPCContract?] = RPCMethod.table.map { byName[$0.name] }

    @inline(__always)
    static func of(_ method: RPCMethod) -> RPCContract? {
        byMethod[method.rawValue]
    }

    /// The resource the operation acts on.
    var kind: ResourceKind {
        switch self {
        case .start(let kind), .end(let kind), .query(let kind), .delete(let kind): kind
        case .queryTasks: .task
        }
    }
}

/// How one RPC's request becomes its REST call, worked out once from the generated field map
/// and the contract table: which fields are the ids of the route's path, which are members of
/// the event body, which carry the extensions.
struct RequestPlan: Sendable {
    let contract: RPCContract
    /// `service_id`: in the path of every operation but Start Service.
    let serviceID: ProtoField?
    /// `state_id` / `task_id` of the state or task an end, query or delete names.
    let childID: ProtoField?
    /// Start and end: the fields that become members of the event (the event's own fields
    /// included, as `EventFields`), in field-number order: the order of their checks.
    let members: [EventMember]
    /// The `google.protobuf.Struct` form of the extensions, and the exact-text one.
    let extensions: ProtoField?
    let extensionsJSON: ProtoField?
    /// Queries: the fields left, flags and filters, read by name (`field(_:)`).
    let others: [ProtoField]

    static let structType = "google.protobuf.Struct"
    static let eventFieldsType = "genesys.cs.v1.EventFields"
    static let attributeType = "genesys.cs.v1.BusinessAttribute"

    init(_ method: RPCMethod, _ contract: RPCContract) {
        self.contract = contract
        let fields = method.descriptor.requestFields
        let kind = contract.kind
        switch contract {
        case .start(.service): serviceID = nil
        default: serviceID = fields.named(ResourceKind.service.idKey)
        }
        switch contract {
        case .end(let k), .query(let k), .delete(let k): childID = k == .service ? nil : fields.named(k.idKey)
        case .start, .queryTasks: childID = nil
        }
        extensions = fields.first { $0.typeName == Self.structType }
        extensionsJSON = fields.named("extensions_json")
        var members: [EventMember] = []
        var others: [ProtoField] = []
        for field in fields where field != serviceID && field != childID && field != extensions && field != extensionsJSON {
            switch contract {
            case .start, .end: members.append(EventMember(field, in: method.descriptor.requestType))
            default: others.append(field)
            }
        }
        precondition(kind == .service || contract == .start(kind) || contract == .queryTasks || childID != nil,
                     "\(method.path): no \(kind.idKey) field")
        precondition(contract == .start(.service) || serviceID != nil, "\(method.path): no service_id field")
        self.members = members
        self.others = others
    }

    /// A query field the contract code reads by name; the proto must have it.
    func field(_ name: String) -> ProtoField {
        guard let field = others.named(name) else { preconditionFailure("the request has no field \(name)") }
        return field
    }

    /// One plan per RPC, nil for the RPCs answered locally.
    static let byMethod: [RequestPlan?] = RPCMethod.allCases.map { method in
        RPCContract.of(method).map { RequestPlan(method, $0) }
    }
}

/// A field of a start or end request (or of its `EventFields`) and how it becomes members of
/// the event, decided once so that decoding compares no type names.
struct EventMember: Sendable {
    enum Role: Sendable { case eventFields, attribute, string, integer }

    let field: ProtoField
    let role: Role

    init(_ field: ProtoField, in message: String) {
        self.field = field
        switch (field.type, field.typeName) {
        case (.message, RequestPlan.eventFieldsType?): role = .eventFields
        case (.message, RequestPlan.attributeType?): role = .attribute
        case (.string, _): role = .string
        case (.int32, _), (.int64, _): role = .integer
        default: preconditionFailure("\(message).\(field.name) has a type no event member has")
        }
    }
}
