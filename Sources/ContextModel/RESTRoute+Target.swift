/// The inverse of `RESTRoute.parse`: the method and request target of an operation, as the
/// gateway sends it to the core. `parse(method, target(basePath:))` gives the route back.
extension RESTRoute {
    public var method: String {
        switch self {
        case .startService, .endService, .startState, .endState, .startTask, .endTask: "POST"
        case .deleteService: "DELETE"
        case .queryService, .queryState, .queryTask, .queryTasks: "GET"
        }
    }

    public func target(basePath: String = RESTRoute.defaultBasePath) -> String {
        let s = "\(RESTRoute.trimmedBase(basePath))/services"
        switch self {
        case .startService:
            return "\(s)/start"
        case .endService(let sid):
            return "\(s)/\(sid)/end"
        case .queryService(let sid, let include):
            var q = QueryBuilder()
            q.flag("active_states", include.activeStates)
            q.flag("completed_states", include.completedStates)
            q.flag("active_tasks", include.activeTasks)
            q.flag("completed_tasks", include.completedTasks)
            return "\(s)/\(sid)" + q.text
        case .deleteService(let sid):
            return "\(s)/\(sid)"
        case .startState(let sid):
            return "\(s)/\(sid)/states/start"
        case .endState(let sid, let stid):
            return "\(s)/\(sid)/states/\(stid)/end"
        case .queryState(let sid, let stid, let include):
            var q = QueryBuilder()
            q.flag("active_tasks", include.activeTasks)
            q.flag("completed_tasks", include.completedTasks)
            return "\(s)/\(sid)/states/\(stid)" + q.text
        case .startTask(let sid):
            return "\(s)/\(sid)/tasks/start"
        case .endTask(let sid, let tid):
            return "\(s)/\(sid)/tasks/\(tid)/end"
        case .queryTask(let sid, let tid):
            return "\(s)/\(sid)/tasks/\(tid)"
        case .queryTasks(let sid, let filter):
            let status = switch filter.status {
            case .all: ""
            case .active: "/active"
            case .completed: "/completed"
            }
            var q = QueryBuilder()
            if !filter.taskTypes.isEmpty {
                q.add("task_types", filter.taskTypes.map(QueryBuilder.encode).joined(separator: ","))
            }
            if let state = filter.stateID { q.add("state_id", String(state)) }
            return "\(s)/\(sid)/tasks\(status)" + q.text
        }
    }
}

private struct QueryBuilder {
    var text = ""

    mutating func flag(_ name: String, _ on: Bool) {
        if on { add(name, "true") }
    }

    mutating func add(_ name: String, _ encodedValue: String) {
        text += (text.isEmpty ? "?" : "&") + name + "=" + encodedValue
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters, so `,` `&` `+` `%` and
    /// spaces inside a value survive `QueryString.decode`.
    static func encode(_ value: String) -> String {
        var out = ""
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}
