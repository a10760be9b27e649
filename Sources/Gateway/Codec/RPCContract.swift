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

/// A field of a request and where protobuf-c keeps it.
struct PlannedField: Sendable {
    let field: ProtoField
    let slot: FieldSlot
}

/// How one RPC's request becomes its REST call, worked out once from the generated field map,
/// protobuf-c's descriptor and the contract table: which fields are the ids of the route's
/// path, which are members of the event body, which carry the extensions. A class: the decoder
/// reads it per request without copying (or retaining) its arrays field by field.
final class RequestPlan: Sendable {
    let contract: RPCContract
    /// `service_id`: in the path of every operation but Start Service.
    let serviceID: PlannedField?
    /// `state_id` / `task_id` of the state or task an end, query or delete names.
    let childID: PlannedField?
    /// Start and end: the fields that become members of the event (the event's own fields
    /// included, as `EventFields`), in field-number order: the order of their checks.
    let members: [EventMember]
    /// The members of `EventFields`, and the oneof of `BusinessAttribute` (id, name), when the
    /// request has them.
    let eventMembers: [EventMember]
    let attributeSlots: [FieldSlot]
    /// The `google.protobuf.Struct` form of the extensions, and the exact-text one.
    let extensions: PlannedField?
    let extensionsJSON: PlannedField?
    /// Queries: the fields left, flags and filters, read by name (`field(_:)`).
    let others: [PlannedField]

    static let structType = "google.protobuf.Struct"
    static let eventFieldsType = "genesys.cs.v1.EventFields"
    static let attributeType = "genesys.cs.v1.BusinessAttribute"

    init(_ method: RPCMethod, _ contract: RPCContract) {
        self.contract = contract
        let layout = MessageLayout(request: method)
        let fields = method.descriptor.requestFields
        func planned(_ field: ProtoField?) -> PlannedField? {
            field.map { PlannedField(field: $0, slot: layout.slot($0)) }
        }
        let kind = contract.kind
        let serviceIDField: ProtoField? = contract == .start(.service) ? nil : fields.named(ResourceKind.service.idKey)
        let childIDField: ProtoField? = switch contract {
        case .end(let k), .query(let k), .delete(let k): k == .service ? nil : fields.named(k.idKey)
        case .start, .queryTasks: nil
        }
        let extensionsField = fields.first { $0.typeName == Self.structType }
        let extensionsJSONField = fields.named("extensions_json")
        serviceID = planned(serviceIDField)
        childID = planned(childIDField)
        extensions = planned(extensionsField)
        extensionsJSON = planned(extensionsJSONField)
        var members: [EventMember] = []
        var eventMembers: [EventMember] = []
        var attributeSlots: [FieldSlot] = []
        var others: [PlannedField] = []
        func attributes(_ layout: MessageLayout, _ field: ProtoField) {
            guard attributeSlots.isEmpty else { return }
            let sub = layout.layout(of: field)
            attributeSlots = ProtoSchema.fields(of: Self.attributeType).map(sub.slot)
        }
        for field in fields where field != serviceIDField && field != childIDField && field != extensionsField && field != extensionsJSONField {
            switch contract {
            case .start, .end:
                let member = EventMember(field, layout.slot(field), in: method.descriptor.requestType)
                members.append(member)
                if member.role == .eventFields {
                    let eventLayout = layout.layout(of: field)
                    for inner in ProtoSchema.fields(of: Self.eventFieldsType) {
                        let innerMember = EventMember(inner, eventLayout.slot(inner), in: Self.eventFieldsType)
                        precondition(innerMember.role != .eventFields, "EventFields inside EventFields")
                        eventMembers.append(innerMember)
                        if innerMember.role == .attribute { attributes(eventLayout, inner) }
                    }
                } else if member.role == .attribute {
                    attributes(layout, field)
                }
            default:
                others.append(PlannedField(field: field, slot: layout.slot(field)))
            }
        }
        precondition(kind == .service || contract == .start(kind) || contract == .queryTasks || childID != nil,
                     "\(method.path): no \(kind.idKey) field")
        precondition(contract == .start(.service) || serviceID != nil, "\(method.path): no service_id field")
        self.members = members
        self.eventMembers = eventMembers
        self.attributeSlots = attributeSlots
        self.others = others
    }

    /// A query field the contract code reads by name; the proto must have it.
    func field(_ name: String) -> PlannedField {
        guard let planned = others.first(where: { $0.field.name == name }) else {
            preconditionFailure("the request has no field \(name)")
        }
        return planned
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

    /// The member's key: the field's name.
    let key: String
    let slot: FieldSlot
    let role: Role

    init(_ field: ProtoField, _ slot: FieldSlot, in message: String) {
        key = field.name
        self.slot = slot
        switch (field.type, field.typeName) {
        case (.message, RequestPlan.eventFieldsType?): role = .eventFields
        case (.message, RequestPlan.attributeType?): role = .attribute
        case (.string, _): role = .string
        case (.int32, _), (.int64, _): role = .integer
        default: preconditionFailure("\(message).\(field.name) has a type no event member has")
        }
    }
}
