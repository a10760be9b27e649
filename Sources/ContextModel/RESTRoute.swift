/// The operations of CONTEXT-SERVICES.md §2, parsed from a method and a request target.
/// Pure: the core and the gateway's REST bridge share it.
public enum RESTRoute: Sendable, Equatable {
    case startService
    case endService(serviceID: Int64)
    case queryService(serviceID: Int64, include: ServiceInclude)
    case deleteService(serviceID: Int64)
    case startState(serviceID: Int64)
    case endState(serviceID: Int64, stateID: Int64)
    case queryState(serviceID: Int64, stateID: Int64, include: StateInclude)
    case startTask(serviceID: Int64)
    case endTask(serviceID: Int64, taskID: Int64)
    case queryTask(serviceID: Int64, taskID: Int64)
    case queryTasks(serviceID: Int64, filter: TaskFilter)

    /// The base of every path (§2).
    public static let defaultBasePath = "/genesys/1/cs"

    /// A base path without its trailing slashes: "/x/" and "/x" name the same base, and "/"
    /// is the root ("").
    public static func trimmedBase(_ basePath: String) -> Substring {
        var end = basePath.utf8.endIndex
        while end > basePath.utf8.startIndex, basePath.utf8[basePath.utf8.index(before: end)] == UInt8(ascii: "/") {
            end = basePath.utf8.index(before: end)
        }
        return basePath[..<end]
    }

    /// Whether the operation carries an event body.
    public var takesBody: Bool {
        switch self {
        case .startService, .endService, .startState, .endState, .startTask, .endTask: true
        default: false
        }
    }
}

/// The `include` flags of a query: each flag's name (the REST query parameter and the proto
/// field) and bit (the batch format) are said once, in `flags`, for every reader and writer.
public protocol IncludeFlags: Sendable, Equatable {
    init()
    /// Name and value of each flag, in the order their arrays render; a flag's bit in the batch
    /// format is `1 << index`.
    static var flags: [(name: String, value: any WritableKeyPath<Self, Bool> & Sendable)] { get }
}

extension IncludeFlags {
    /// Sets the flag called `name`; false when there is none.
    public mutating func set(_ name: some StringProtocol, _ on: Bool) -> Bool {
        guard let flag = Self.flags.first(where: { $0.name == name }) else { return false }
        self[keyPath: flag.value] = on
        return true
    }

    /// The batch format's byte.
    public var bits: UInt8 {
        var bits: UInt8 = 0
        for (i, flag) in Self.flags.enumerated() where self[keyPath: flag.value] { bits |= 1 << i }
        return bits
    }

    /// From the batch format's byte; nil when a bit names no flag.
    public init?(bits: UInt8) {
        guard bits >> Self.flags.count == 0 else { return nil }
        self.init()
        for (i, flag) in Self.flags.enumerated() { self[keyPath: flag.value] = bits & (1 << i) != 0 }
    }
}

/// The flags of Query Service (`active_states=true&…`), in the order their arrays render.
public struct ServiceInclude: IncludeFlags {
    public var activeStates = false
    public var completedStates = false
    public var activeTasks = false
    public var completedTasks = false
    public init() {}

    public static let flags: [(name: String, value: any WritableKeyPath<Self, Bool> & Sendable)] = [
        ("active_states", \.activeStates), ("completed_states", \.completedStates),
        ("active_tasks", \.activeTasks), ("completed_tasks", \.completedTasks),
    ]
}

/// The flags of Query State (decided: a state's task arrays, as §4 says "when asked").
public struct StateInclude: IncludeFlags {
    public var activeTasks = false
    public var completedTasks = false
    public init() {}

    public static let flags: [(name: String, value: any WritableKeyPath<Self, Bool> & Sendable)] = [
        ("active_tasks", \.activeTasks), ("completed_tasks", \.completedTasks),
    ]
}

public struct TaskFilter: Sendable, Equatable {
    public enum Status: Sendable, Equatable { case all, active, completed }
    public var status: Status = .all
    /// `task_types=a,b`: a task matches when its type's text (the decimal id or the name) is
    /// one of these. Empty: every type.
    public var taskTypes: [String] = []
    /// `state_id=N`: only the tasks of that state.
    public var stateID: Int64?
    public init() {}
}

/// Why a request target names no operation.
public enum RouteError: Error, Equatable, Sendable {
    /// No operation lives at this path: 404.
    case notFound(path: String)
    /// Operations live at this path, but not for this method: 405, with the methods that are.
    case methodNotAllowed(allowed: [String])
    /// The path or query names an operation but a value in it is invalid: 400.
    case invalid(String)

    public func contextError(method: String, path: String) -> ContextError {
        switch self {
        case .notFound(let p): .notFound("no operation at \(p)")
        case .methodNotAllowed: .methodNotAllowed(method, path: path)
        case .invalid(let message): .validation(message)
        }
    }
}

extension RESTRoute {
    /// Parses `method` and the request target (path plus optional query) under `basePath`.
    /// `/service/…` is accepted as `/services/…` so that every Start Task `Location` resolves (§2).
    public static func parse(
        method: String, target: String, basePath: String = defaultBasePath
    ) -> Result<RESTRoute, RouteError> {
        // Bytes, not Characters: a path is ASCII by the time it matters, and Character-wise
        // `hasPrefix`, `split` and `count` (grapheme breaking) cost 4.5% of the CPU of a
        // batched durable StartTask run, where every batch item is routed (perf, RESULTS.md).
        let slash = UInt8(ascii: "/")
        let path: Substring
        let query: Substring
        if let q = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<q]
            query = target[target.utf8.index(after: q)...]
        } else {
            path = target[...]
            query = ""
        }
        let base = trimmedBase(basePath)
        guard path.utf8.starts(with: base.utf8) else { return .failure(.notFound(path: String(path))) }
        var rest = path.utf8.dropFirst(base.utf8.count)
        if rest.last == slash { rest = rest.dropLast() }  // tolerate one trailing slash
        guard rest.first == slash else { return .failure(.notFound(path: String(path))) }
        let segments = rest.dropFirst().split(separator: slash, omittingEmptySubsequences: false).map { Substring($0) }
        guard let first = segments.first, first == "services" || first == "service" else {
            return .failure(.notFound(path: String(path)))
        }
        let shape = Array(segments.dropFirst())
        do {
            return try route(method: method, shape: shape, query: query, path: path)
        } catch {
            return .failure(error)
        }
    }

    private static func route(
        method: String, shape: [Substring], query: Substring, path: Substring
    ) throws(RouteError) -> Result<RESTRoute, RouteError> {
        func allow(_ methods: String...) throws(RouteError) {
            if !methods.contains(method) { throw .methodNotAllowed(allowed: methods) }
        }
        func notFound() -> Result<RESTRoute, RouteError> { .failure(.notFound(path: String(path))) }

        switch shape.count {
        case 1 where shape[0] == "start":
            try allow("POST")
            return .success(.startService)
        case 1:
            try allow("GET", "DELETE")
            let sid = try serviceID(shape[0])
            if method == "DELETE" { return .success(.deleteService(serviceID: sid)) }
            return .success(.queryService(serviceID: sid, include: try include(query)))
        case 2 where shape[1] == "end":
            try allow("POST")
            return .success(.endService(serviceID: try serviceID(shape[0])))
        case 2 where shape[1] == "tasks":
            try allow("GET")
            return .success(.queryTasks(serviceID: try serviceID(shape[0]), filter: try taskFilter(.all, query)))
        case 3 where shape[1] == "states" && shape[2] == "start":
            try allow("POST")
            return .success(.startState(serviceID: try serviceID(shape[0])))
        case 3 where shape[1] == "tasks" && shape[2] == "start":
            try allow("POST")
            return .success(.startTask(serviceID: try serviceID(shape[0])))
        case 3 where shape[1] == "tasks" && (shape[2] == "active" || shape[2] == "completed"):
            try allow("GET")
            let status: TaskFilter.Status = shape[2] == "active" ? .active : .completed
            return .success(.queryTasks(serviceID: try serviceID(shape[0]), filter: try taskFilter(status, query)))
        case 3 where shape[1] == "states":
            try allow("GET")
            let sid = try serviceID(shape[0])
            let stid = try childID("state_id", shape[2])
            return .success(.queryState(serviceID: sid, stateID: stid, include: try include(query)))
        case 3 where shape[1] == "tasks":
            try allow("GET")
            return .success(.queryTask(serviceID: try serviceID(shape[0]), taskID: try childID("task_id", shape[2])))
        case 4 where shape[1] == "states" && shape[3] == "end":
            try allow("POST")
            return .success(.endState(serviceID: try serviceID(shape[0]), stateID: try childID("state_id", shape[2])))
        case 4 where shape[1] == "tasks" && shape[3] == "end":
            try allow("POST")
            return .success(.endTask(serviceID: try serviceID(shape[0]), taskID: try childID("task_id", shape[2])))
        default:
            return notFound()
        }
    }

    private static func serviceID(_ segment: Substring) throws(RouteError) -> Int64 {
        guard let v = decimal(segment), ResourceID.serviceRange.contains(v) else {
            throw .invalid("service_id must be an integer from 1 to 9223372036854775807, got '\(segment)'")
        }
        return v
    }

    private static func childID(_ name: String, _ segment: Substring) throws(RouteError) -> Int64 {
        guard let v = decimal(segment), ResourceID.childRange.contains(v) else {
            throw .invalid("\(name) must be an integer from 1 to 2147483647, got '\(segment)'")
        }
        return v
    }

    /// Plain decimal digits only: no sign, no spaces, no leading '+'.
    private static func decimal(_ s: Substring) -> Int64? {
        guard !s.isEmpty, s.utf8.count <= 19, s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(s)
    }

    private static func flag(_ name: String, _ value: String) throws(RouteError) -> Bool {
        switch value {
        case "true": return true
        case "false", "": return false
        default: throw .invalid("\(name) must be true or false, got '\(value)'")
        }
    }

    /// The include flags of a query; unknown parameters are ignored, as HTTP caches and proxies
    /// add some.
    private static func include<Include: IncludeFlags>(_ query: Substring) throws(RouteError) -> Include {
        var include = Include()
        for (name, value) in try QueryString.parse(query) where Include.flags.contains(where: { $0.name == name }) {
            _ = include.set(name, try flag(name, value))
        }
        return include
    }

    private static func taskFilter(_ status: TaskFilter.Status, _ query: Substring) throws(RouteError) -> TaskFilter {
        var filter = TaskFilter()
        filter.status = status
        for (name, raw) in try QueryString.parseRaw(query) {
            switch name {
            case "task_types":
                for item in raw.split(separator: ",") {
                    filter.taskTypes.append(try QueryString.decode(item))
                }
            case "state_id":
                let value = try QueryString.decode(raw)
                guard let v = decimal(value[...]), ResourceID.childRange.contains(v) else {
                    throw .invalid("state_id must be an integer from 1 to 2147483647, got '\(value)'")
                }
                filter.stateID = v
            default: break
            }
        }
        return filter
    }
}

/// `application/x-www-form-urlencoded` query strings: `+` is a space, `%XX` a byte.
enum QueryString {
    /// Name and value of each parameter, both decoded.
    static func parse(_ query: Substring) throws(RouteError) -> [(String, String)] {
        var pairs: [(String, String)] = []
        for (name, raw) in try parseRaw(query) {
            pairs.append((name, try decode(raw)))
        }
        return pairs
    }

    /// Decoded names with the values still encoded, for values that are lists: an encoded
    /// comma (`%2C`) then stays part of an item instead of splitting it.
    static func parseRaw(_ query: Substring) throws(RouteError) -> [(String, Substring)] {
        var pairs: [(String, Substring)] = []
        for part in query.split(separator: "&") {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            pairs.append((try decode(kv[0]), kv.count > 1 ? kv[1] : ""))
        }
        return pairs
    }

    static func decode(_ s: Substring) throws(RouteError) -> String {
        guard s.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return String(s)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            switch b {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard it.count >= 2, let hi = hex(it.popFirst()!), let lo = hex(it.popFirst()!) else {
                    throw .invalid("malformed percent-encoding in query '\(s)'")
                }
                bytes.append(hi << 4 | lo)
            default:
                bytes.append(b)
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalid("query '\(s)' does not decode to UTF-8")
        }
        return text
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
