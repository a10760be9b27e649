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
            return "\(s)/\(sid)" + QueryBuilder.flags(include)
        case .deleteService(let sid):
            return "\(s)/\(sid)"
        case .startState(let sid):
            return "\(s)/\(sid)/states/start"
        case .endState(let sid, let stid):
            return "\(s)/\(sid)/states/\(stid)/end"
        case .queryState(let sid, let stid, let include):
            return "\(s)/\(sid)/states/\(stid)" + QueryBuilder.flags(include)
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

    /// `?name=true&…` for the flags that are set, in their table's order.
    static func flags<Include: IncludeFlags>(_ include: Include) -> String {
        var q = QueryBuilder()
        for flag in Include.flags { q.flag(flag.name, include[keyPath: flag.value]) }
        return q.text
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

/// The operations of §2 as numbers, in the order of §2 (`RESTRoute.operationNames`): how the
/// batch format (`BatchCodec`, version 3) names an item's operation, so the core dispatches on
/// the number and never parses a path.
public enum RESTOperation: UInt8, Sendable, CaseIterable {
    case startService = 1, endService, queryService, deleteService, startState, endState, queryState,
         startTask, endTask, queryTask, queryTasks

    /// Whether the operation names a service (every one but Start Service).
    public var takesServiceID: Bool { self != .startService }

    /// The name of its child id (`state_id`, `task_id`), nil when it has none.
    public var childIDName: String? {
        switch self {
        case .endState, .queryState: "state_id"
        case .endTask, .queryTask: "task_id"
        default: nil
        }
    }
}

extension RESTRoute {
    /// The operation's number in the batch format.
    public var operation: RESTOperation {
        switch self {
        case .startService: .startService
        case .endService: .endService
        case .queryService: .queryService
        case .deleteService: .deleteService
        case .startState: .startState
        case .endState: .endState
        case .queryState: .queryState
        case .startTask: .startTask
        case .endTask: .endTask
        case .queryTask: .queryTask
        case .queryTasks: .queryTasks
        }
    }

    /// The service id, 0 for Start Service (which has none).
    public var serviceID: Int64 {
        switch self {
        case .startService: 0
        case .endService(let sid), .queryService(let sid, _), .deleteService(let sid), .startState(let sid),
             .endState(let sid, _), .queryState(let sid, _, _), .startTask(let sid), .endTask(let sid, _),
             .queryTask(let sid, _), .queryTasks(let sid, _):
            sid
        }
    }

    /// The state or task id the path names, 0 when it names none (a Query Tasks' `state_id`
    /// is a filter, not part of the path).
    public var childID: Int64 {
        switch self {
        case .endState(_, let id), .queryState(_, let id, _), .endTask(_, let id), .queryTask(_, let id): id
        default: 0
        }
    }

    /// The message of a service id out of range, as `parse` words it for a path segment.
    public static func serviceIDMessage(_ got: some CustomStringConvertible) -> String {
        "service_id must be an integer from 1 to 9223372036854775807, got '\(got)'"
    }

    /// The message of a state or task id out of range, as `parse` words it.
    public static func childIDMessage(_ name: String, _ got: some CustomStringConvertible) -> String {
        "\(name) must be an integer from 1 to 2147483647, got '\(got)'"
    }
}
