import CProtobufC
import ContextModel
import ContextProto

// One function per request message. Presence (proto/…/context_services.proto): a message field
// is set when its pointer is; an `optional` scalar when its `_<name>_case` is (gen-proto.sh
// lowers `optional` to the one-field oneof protoc itself uses); a plain proto3 scalar is unset
// at 0, which no id the contract issues can be (§1).

extension Codec {
    static func decodeStartService(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .startService,
            unpack: genesys__cs__v1__start_service_request__unpack,
            free: genesys__cs__v1__start_service_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            var event = EventBuilder(.service, .start, .startService, limits: limits)
            try event.attribute("service_type", m.service_type)
            if isSet(m._customer_id_case) { try event.string("customer_id", m.customer_id) }
            if isSet(m._contact_key_case) { try event.string("contact_key", m.contact_key) }
            if isSet(m._est_duration_case) { event.integer("est_duration", Int64(m.est_duration)) }
            try event.fields(m.event)
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .startService, body: built.canonicalJSON)
        }
    }

    static func decodeCompleteService(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .completeService,
            unpack: genesys__cs__v1__complete_service_request__unpack,
            free: genesys__cs__v1__complete_service_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            var event = EventBuilder(.service, .end, .completeService, limits: limits)
            try event.fields(m.event)
            try event.attribute("disposition", m.disposition)
            if isSet(m._disposition_desc_case) { try event.string("disposition_desc", m.disposition_desc) }
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .endService(serviceID: serviceID), body: built.canonicalJSON)
        }
    }

    static func decodeQueryService(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try withUnpacked(
            bytes, .queryService,
            unpack: genesys__cs__v1__query_service_request__unpack,
            free: genesys__cs__v1__query_service_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            var include = ServiceInclude()
            include.activeStates = m.active_states != 0
            include.completedStates = m.completed_states != 0
            include.activeTasks = m.active_tasks != 0
            include.completedTasks = m.completed_tasks != 0
            return UpstreamCall(route: .queryService(serviceID: try requireServiceID(m.service_id), include: include), body: [])
        }
    }

    static func decodeDeleteService(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try withUnpacked(
            bytes, .deleteService,
            unpack: genesys__cs__v1__delete_service_request__unpack,
            free: genesys__cs__v1__delete_service_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            UpstreamCall(route: .deleteService(serviceID: try requireServiceID(m.pointee.service_id)), body: [])
        }
    }

    static func decodeStartState(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .startState,
            unpack: genesys__cs__v1__start_state_request__unpack,
            free: genesys__cs__v1__start_state_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            var event = EventBuilder(.state, .start, .startState, limits: limits)
            try event.attribute("state_type", m.state_type)
            if isSet(m._est_duration_case) { event.integer("est_duration", Int64(m.est_duration)) }
            try event.fields(m.event)
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .startState(serviceID: serviceID), body: built.canonicalJSON)
        }
    }

    static func decodeCompleteState(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .completeState,
            unpack: genesys__cs__v1__complete_state_request__unpack,
            free: genesys__cs__v1__complete_state_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            let stateID = try requireChildID("state_id", m.state_id)
            var event = EventBuilder(.state, .end, .completeState, limits: limits)
            try event.fields(m.event)
            try event.attribute("disposition", m.disposition)
            if isSet(m._disposition_desc_case) { try event.string("disposition_desc", m.disposition_desc) }
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .endState(serviceID: serviceID, stateID: stateID), body: built.canonicalJSON)
        }
    }

    static func decodeQueryState(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try withUnpacked(
            bytes, .queryState,
            unpack: genesys__cs__v1__query_state_request__unpack,
            free: genesys__cs__v1__query_state_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            let stateID = try requireChildID("state_id", m.state_id)
            var include = StateInclude()
            include.activeTasks = m.active_tasks != 0
            include.completedTasks = m.completed_tasks != 0
            return UpstreamCall(route: .queryState(serviceID: serviceID, stateID: stateID, include: include), body: [])
        }
    }

    static func decodeStartTask(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .startTask,
            unpack: genesys__cs__v1__start_task_request__unpack,
            free: genesys__cs__v1__start_task_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            var event = EventBuilder(.task, .start, .startTask, limits: limits)
            // 0: the task belongs to no state. Any other value, negative ones included, goes to
            // the model, which refuses what is not 1...2^31-1.
            if m.state_id != 0 { event.integer("state_id", Int64(m.state_id)) }
            try event.attribute("task_type", m.task_type)
            if isSet(m._est_duration_case) { event.integer("est_duration", Int64(m.est_duration)) }
            try event.fields(m.event)
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .startTask(serviceID: serviceID), body: built.canonicalJSON)
        }
    }

    static func decodeCompleteTask(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try guardStructDepth(bytes, limits)
        return try withUnpacked(
            bytes, .completeTask,
            unpack: genesys__cs__v1__complete_task_request__unpack,
            free: genesys__cs__v1__complete_task_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            let taskID = try requireChildID("task_id", m.task_id)
            var event = EventBuilder(.task, .end, .completeTask, limits: limits)
            try event.fields(m.event)
            try event.attribute("disposition", m.disposition)
            if isSet(m._disposition_desc_case) { try event.string("disposition_desc", m.disposition_desc) }
            let built = try event.build(
                extensions: m.extensions, extensionsJSON: isSet(m._extensions_json_case) ? m.extensions_json : nil)
            return UpstreamCall(route: .endTask(serviceID: serviceID, taskID: taskID), body: built.canonicalJSON)
        }
    }

    static func decodeQueryTask(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try withUnpacked(
            bytes, .queryTask,
            unpack: genesys__cs__v1__query_task_request__unpack,
            free: genesys__cs__v1__query_task_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            let taskID = try requireChildID("task_id", m.task_id)
            return UpstreamCall(route: .queryTask(serviceID: serviceID, taskID: taskID), body: [])
        }
    }

    static func decodeQueryTasks(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .defaults) throws(GRPCStatus) -> UpstreamCall {
        try withUnpacked(
            bytes, .queryTasks,
            unpack: genesys__cs__v1__query_tasks_request__unpack,
            free: genesys__cs__v1__query_tasks_request__free_unpacked
        ) { m throws(GRPCStatus) -> UpstreamCall in
            let m = m.pointee
            let serviceID = try requireServiceID(m.service_id)
            var filter = TaskFilter()
            switch m.status.rawValue {
            case GENESYS__CS__V1__TASK_STATUS__TASK_STATUS_UNSPECIFIED.rawValue: filter.status = .all
            case GENESYS__CS__V1__TASK_STATUS__TASK_STATUS_ACTIVE.rawValue: filter.status = .active
            case GENESYS__CS__V1__TASK_STATUS__TASK_STATUS_COMPLETED.rawValue: filter.status = .completed
            default:
                // proto3 enums are open: an unknown number arrives as itself.
                throw .invalid("status must be TASK_STATUS_UNSPECIFIED, TASK_STATUS_ACTIVE or TASK_STATUS_COMPLETED, got \(m.status.rawValue)")
            }
            if m.n_task_types > 0, let types = m.task_types {
                filter.taskTypes.reserveCapacity(m.n_task_types)
                for k in 0..<m.n_task_types {
                    let type = try protoString(types[k], "task_types", .queryTasks)
                    // The query `task_types=` is no filter at all (and REST drops empty items of
                    // `a,,b`): forwarded, an empty type would widen the query to every task.
                    guard !type.isEmpty else {
                        throw .invalid("task_types must not contain an empty string, got one at index \(k)")
                    }
                    filter.taskTypes.append(type)
                }
            }
            // 0: tasks of every state.
            if m.state_id != 0 { filter.stateID = try requireChildID("state_id", m.state_id) }
            return UpstreamCall(route: .queryTasks(serviceID: serviceID, filter: filter), body: [])
        }
    }

    /// The service named in the path of the call: required, 1...2^63-1 (§1).
    private static func requireServiceID(_ id: Int64) throws(GRPCStatus) -> Int64 {
        guard ResourceID.serviceRange.contains(id) else {
            throw .invalid("service_id must be an integer from 1 to 9223372036854775807, got \(id)")
        }
        return id
    }

    /// A state or task named in the path of the call: required, 1...2^31-1 (§1).
    private static func requireChildID(_ name: String, _ id: Int32) throws(GRPCStatus) -> Int64 {
        guard ResourceID.childRange.contains(Int64(id)) else {
            throw .invalid("\(name) must be an integer from 1 to 2147483647, got \(id)")
        }
        return Int64(id)
    }

    /// See `StructDepthGuard`: runs on the raw bytes, before protobuf-c recurses into them.
    private static func guardStructDepth(_ bytes: UnsafeRawBufferPointer, _ limits: JSONLimits) throws(GRPCStatus) {
        let limit = limits.maxDepth
        if StructDepthGuard.exceeds(bytes, field: 14, limit: limit) {
            var error = ContextError(JSONReadError.tooDeep(limit: limit))
            error.message = "extensions: " + error.message
            throw GRPCStatus(error)
        }
    }
}

@inline(__always)
func isSet<Case: RawRepresentable>(_ oneofCase: Case) -> Bool where Case.RawValue: BinaryInteger {
    oneofCase.rawValue != 0
}
