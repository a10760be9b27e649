import ContextModel
import NIOCore

// One table-driven decoder for every request message. The RPC's `RequestPlan` (from the
// generated field map and the contract table) says which fields name the route's resources and
// which become members of the event; `ProtoMessageRef` reads them from protobuf-c's struct.
// Presence (proto/…/context_services.proto): a message field is set when its pointer is; an
// `optional` scalar when its `_<name>_case` is (gen-proto.sh lowers `optional` to the one-field
// oneof protoc itself uses); a plain proto3 scalar is unset at 0, which no id the contract
// issues can be (§1).

extension Codec {
    /// Unpacks the protobuf request `message` of `method` and returns the REST call to make.
    /// Throws INVALID_ARGUMENT for values the contract refuses and INTERNAL for bytes that are
    /// not a message of the method's request type (see `GRPCStatus.unparsable`).
    /// `limits` are the core's body limits (`--max-body`, `--max-depth`), applied to the
    /// extensions here so that a binary request is refused exactly where a REST one would be.
    static func decodeRequest(
        _ method: RPCMethod, _ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults
    ) throws(GRPCStatus) -> UpstreamCall {
        guard let plan = RequestPlan.byMethod[method.rawValue] else { throw .servedLocally(method) }
        if let extensions = plan.extensions { try guardStructDepth(bytes, field: UInt64(extensions.field.number), limits) }
        return try withUnpacked(bytes, method) { m throws(GRPCStatus) -> UpstreamCall in
            var serviceID: Int64 = 0
            var childID: Int64 = 0
            if let id = plan.serviceID { serviceID = try requireServiceID(m.int64(id.slot)) }
            if let id = plan.childID { childID = try requireChildID(id.field.name, m.int64(id.slot)) }
            switch plan.contract {
            case .start(let kind):
                let body = try event(m, plan, kind, .start, method, limits)
                switch kind {
                case .service: return UpstreamCall(route: .startService, body: body)
                case .state: return UpstreamCall(route: .startState(serviceID: serviceID), body: body)
                case .task: return UpstreamCall(route: .startTask(serviceID: serviceID), body: body)
                }
            case .end(let kind):
                let body = try event(m, plan, kind, .end, method, limits)
                switch kind {
                case .service: return UpstreamCall(route: .endService(serviceID: serviceID), body: body)
                case .state: return UpstreamCall(route: .endState(serviceID: serviceID, stateID: childID), body: body)
                case .task: return UpstreamCall(route: .endTask(serviceID: serviceID, taskID: childID), body: body)
                }
            case .query(.service):
                let include: ServiceInclude = flags(m, plan, method)
                return UpstreamCall(route: .queryService(serviceID: serviceID, include: include), body: ByteBuffer())
            case .query(.state):
                let include: StateInclude = flags(m, plan, method)
                return UpstreamCall(route: .queryState(serviceID: serviceID, stateID: childID, include: include), body: ByteBuffer())
            case .query(.task):
                return UpstreamCall(route: .queryTask(serviceID: serviceID, taskID: childID), body: ByteBuffer())
            case .delete(.service):
                return UpstreamCall(route: .deleteService(serviceID: serviceID), body: ByteBuffer())
            case .delete:
                preconditionFailure("\(method.path): the contract deletes services only")
            case .queryTasks:
                return UpstreamCall(route: .queryTasks(serviceID: serviceID, filter: try taskFilter(m, plan, method)), body: ByteBuffer())
            }
        }
    }

    /// Start and end requests: the event's members, judged by the model, as canonical JSON.
    @inline(__always)
    private static func event(
        _ m: ProtoMessageRef, _ plan: RequestPlan, _ kind: ResourceKind, _ phase: EventPhase, _ method: RPCMethod,
        _ limits: JSONLimits
    ) throws(GRPCStatus) -> ByteBuffer {
        var event = EventBuilder(kind, phase, method, limits: limits)
        for member in plan.members {
            try event.member(member, of: m, plan)
        }
        let extensions = plan.extensions.flatMap { m.message($0.slot) }
        let extensionsJSON = plan.extensionsJSON.flatMap { m.isSet($0.slot) ? m.cString($0.slot) : nil }
        return try event.build(extensions: extensions, extensionsJSON: extensionsJSON).canonicalJSON
    }

    /// The include flags of a query: the proto's bool fields are named as the REST query's
    /// parameters (checked by the generated table's tests).
    private static func flags<Include: IncludeFlags>(_ m: ProtoMessageRef, _ plan: RequestPlan, _ method: RPCMethod) -> Include {
        var include = Include()
        for flag in plan.others where flag.field.type == .bool {
            guard include.set(flag.field.name, m.int64(flag.slot) != 0) else {
                preconditionFailure("\(method): unknown flag \(flag.field.name)")
            }
        }
        return include
    }

    /// Query Tasks: the status, the task types and the state, as the REST query would carry them.
    private static func taskFilter(_ m: ProtoMessageRef, _ plan: RequestPlan, _ method: RPCMethod) throws(GRPCStatus) -> TaskFilter {
        var filter = TaskFilter()
        let statusField = plan.field("status")
        let status = m.int64(statusField.slot)
        // The enum's values by name, from the generated table: the message names them all.
        let values = ProtoSchema.enums[statusField.field.typeName ?? ""] ?? []
        switch values.first(where: { Int64($0.number) == status })?.name {
        case "TASK_STATUS_UNSPECIFIED"?: filter.status = .all
        case "TASK_STATUS_ACTIVE"?: filter.status = .active
        case "TASK_STATUS_COMPLETED"?: filter.status = .completed
        default:
            // proto3 enums are open: an unknown number arrives as itself.
            let names = values.map(\.name)
            let list = names.count > 1 ? names.dropLast().joined(separator: ", ") + " or " + names.last! : names.joined()
            // The number as the C enum's raw value (unsigned) spells it, as it always has.
            throw .invalid("status must be \(list), got \(UInt32(truncatingIfNeeded: status))")
        }
        let types = plan.field("task_types")
        let count = m.repeatedCount(types.slot)
        if count > 0 {
            filter.taskTypes.reserveCapacity(count)
            for k in 0..<count {
                let type = try protoString(m.cString(types.slot, at: k), types.field.name, method)
                // The query `task_types=` is no filter at all (and REST drops empty items of
                // `a,,b`): forwarded, an empty type would widen the query to every task.
                guard !type.isEmpty else {
                    throw .invalid("task_types must not contain an empty string, got one at index \(k)")
                }
                filter.taskTypes.append(type)
            }
        }
        // 0: tasks of every state.
        let state = plan.field("state_id")
        if m.isSet(state.slot) { filter.stateID = try requireChildID(state.field.name, m.int64(state.slot)) }
        return filter
    }

    /// The service named in the path of the call: required, 1...2^63-1 (§1).
    private static func requireServiceID(_ id: Int64) throws(GRPCStatus) -> Int64 {
        guard ResourceID.serviceRange.contains(id) else {
            throw .invalid("service_id must be an integer from 1 to 9223372036854775807, got \(id)")
        }
        return id
    }

    /// A state or task named in the path of the call: required, 1...2^31-1 (§1). `id` is an
    /// int32 field's value.
    private static func requireChildID(_ name: String, _ id: Int64) throws(GRPCStatus) -> Int64 {
        guard ResourceID.childRange.contains(id) else {
            throw .invalid("\(name) must be an integer from 1 to 2147483647, got \(id)")
        }
        return id
    }

    /// See `StructDepthGuard`: runs on the raw bytes, before protobuf-c recurses into them.
    private static func guardStructDepth(_ bytes: UnsafeRawBufferPointer, field: UInt64, _ limits: JSONLimits) throws(GRPCStatus) {
        let limit = limits.maxDepth
        if StructDepthGuard.exceeds(bytes, field: field, limit: limit) {
            var error = ContextError(JSONReadError.tooDeep(limit: limit))
            error.message = "extensions: " + error.message
            throw GRPCStatus(error)
        }
    }
}

extension Codec {
    /// The `service` of a grpc.health.v1.HealthCheckRequest (answered by the gateway itself).
    static func decodeHealthCheckRequest(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) -> String {
        let service = MessageLayout(request: .healthCheck).slot(ProtoSchema.field(RPCMethod.healthCheck.descriptor.requestType, "service"))
        do {
            return try withUnpacked(bytes, .healthCheck) { m throws(GRPCStatus) in
                m.cString(service).map { String(cString: $0) } ?? ""
            }
        } catch {
            // grpc-go: a request that does not deserialize is INTERNAL.
            throw GRPCStatus(code: .internalError, message: "malformed HealthCheckRequest", exception: nil)
        }
    }
}
