import ContextModel

/// The REST side of a call (§2, §3): its method and target, and its JSON body, the same event a
/// gRPC request carries, with every field at the top level as REST bodies have them.
enum RESTCodec {
    /// The members of `content`'s body, without braces: standard fields, then the extension
    /// members as written. A task's `state_id` is not among them: it varies per call.
    static func members(_ content: EventContent, method: LoadMethod) -> [UInt8] {
        var out: [UInt8] = []
        func member(_ key: String, _ write: (inout [UInt8]) -> Void) {
            if !out.isEmpty { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendKey(key, to: &out)
            write(&out)
        }
        if let type = content.typeName {
            let key = switch method {
            case .startService: "service_type"
            case .startState: "state_type"
            default: "task_type"
            }
            member(key) { JSONWriter.appendString(type, to: &$0) }
        }
        if let v = content.customerID { member("customer_id") { JSONWriter.appendString(v, to: &$0) } }
        if let v = content.estDuration { member("est_duration") { JSONWriter.appendInt(Int64(v), to: &$0) } }
        if let v = content.interactionID { member("interaction_id") { JSONWriter.appendString(v, to: &$0) } }
        if let v = content.mediaType { member("media_type") { JSONWriter.appendString(v, to: &$0) } }
        if let v = content.disposition { member("disposition") { JSONWriter.appendString(v, to: &$0) } }
        if let v = content.dispositionDesc { member("disposition_desc") { JSONWriter.appendString(v, to: &$0) } }
        if let ext = content.extensionsJSON {
            let inner = innerMembers(Array(ext.utf8))
            if !inner.isEmpty {
                if !out.isEmpty { out.append(UInt8(ascii: ",")) }
                out += inner
            }
        }
        return out
    }

    /// The body: `{"state_id":N,…}` for a task in a state, else `{…}`.
    static func body(members: [UInt8], stateID: Int32) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        out.reserveCapacity(members.count + 24)
        if stateID != 0 {
            JSONWriter.appendKey("state_id", to: &out)
            JSONWriter.appendInt(Int64(stateID), to: &out)
            if !members.isEmpty { out.append(UInt8(ascii: ",")) }
        }
        out += members
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The route of `call` (§2); Query Service asks for everything, as the gRPC call does.
    static func route(_ call: LoadCall) -> RESTRoute {
        switch call.method {
        case .startService: return .startService
        case .startState: return .startState(serviceID: call.serviceID)
        case .startTask: return .startTask(serviceID: call.serviceID)
        case .completeTask: return .endTask(serviceID: call.serviceID, taskID: Int64(call.taskID))
        case .completeState: return .endState(serviceID: call.serviceID, stateID: Int64(call.stateID))
        case .queryService:
            var include = ServiceInclude()
            include.activeStates = true
            include.completedStates = true
            include.activeTasks = true
            include.completedTasks = true
            return .queryService(serviceID: call.serviceID, include: include)
        case .completeService: return .endService(serviceID: call.serviceID)
        }
    }

    /// The key of the id a start answers with (`{"task_id":N}`).
    static func idKey(_ method: LoadMethod) -> [UInt8]? {
        switch method {
        case .startService: Array(#""service_id""#.utf8)
        case .startState: Array(#""state_id""#.utf8)
        case .startTask: Array(#""task_id""#.utf8)
        default: nil
        }
    }

    /// The positive integer after `key` (quoted, as given) and a colon in a JSON object; nil when
    /// there is none. A scan, not a parse: enough for the core's `{"task_id":N}` answers.
    static func integer(after key: [UInt8], in body: UnsafeRawBufferPointer) -> Int64? {
        guard !key.isEmpty, body.count > key.count else { return nil }
        var i = 0
        outer: while i + key.count <= body.count {
            for k in 0..<key.count where body[i + k] != key[k] {
                i += 1
                continue outer
            }
            var j = i + key.count
            while j < body.count, body[j] == UInt8(ascii: " ") || body[j] == UInt8(ascii: "\t") || body[j] == 0x0A || body[j] == 0x0D { j += 1 }
            guard j < body.count, body[j] == UInt8(ascii: ":") else { i += 1; continue }
            j += 1
            while j < body.count, body[j] == UInt8(ascii: " ") || body[j] == UInt8(ascii: "\t") || body[j] == 0x0A || body[j] == 0x0D { j += 1 }
            var value: Int64 = 0
            var digits = 0
            while j < body.count, body[j] >= UInt8(ascii: "0"), body[j] <= UInt8(ascii: "9") {
                let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(Int64(body[j] - UInt8(ascii: "0")))
                if o1 || o2 { return nil }
                value = sum
                digits += 1
                j += 1
            }
            return digits > 0 && value > 0 ? value : nil
        }
        return nil
    }

    /// `{ a, b }` → `a, b` (outer whitespace and braces gone); not an object → empty.
    static func innerMembers(_ object: [UInt8]) -> [UInt8] {
        guard let open = object.firstIndex(of: UInt8(ascii: "{")),
              let close = object.lastIndex(of: UInt8(ascii: "}")), open < close else { return [] }
        var inner = object[(open + 1)..<close]
        while let f = inner.first, f == 0x20 || f == 0x0A || f == 0x0D || f == 0x09 { inner = inner.dropFirst() }
        while let l = inner.last, l == 0x20 || l == 0x0A || l == 0x0D || l == 0x09 { inner = inner.dropLast() }
        return Array(inner)
    }
}
