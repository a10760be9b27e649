import Testing
@testable import ContextModel

// `RESTRoute.parse(method:target:basePath:)` against the operations of CONTEXT-SERVICES.md §2.

/// What a row expects.
enum RouteExpectation: Sendable, Equatable {
    case route(RESTRoute)
    case notFound(path: String)
    case methodNotAllowed([String])
    /// `.invalid` whose message contains this text.
    case invalid(mentioning: String)
}

struct RouteCase: Sendable, CustomTestStringConvertible {
    var method: String
    var target: String
    var basePath: String
    var expected: RouteExpectation

    var testDescription: String {
        basePath == RESTRoute.defaultBasePath ? "\(method) \(target)" : "\(method) \(target) under \(basePath)"
    }
}

private enum RouteFixtures {
    static let base = RESTRoute.defaultBasePath

    static func row(_ method: String, _ target: String, _ expected: RouteExpectation, basePath: String = base) -> RouteCase {
        // A target starting with "~" is relative to the default base.
        let full = target.hasPrefix("~") ? base + target.dropFirst() : target
        return RouteCase(method: method, target: full, basePath: basePath, expected: expected)
    }

    static func services(_ a: Bool = false, _ b: Bool = false, _ c: Bool = false, _ d: Bool = false) -> ServiceInclude {
        var i = ServiceInclude()
        i.activeStates = a
        i.completedStates = b
        i.activeTasks = c
        i.completedTasks = d
        return i
    }

    static func states(active: Bool = false, completed: Bool = false) -> StateInclude {
        var i = StateInclude()
        i.activeTasks = active
        i.completedTasks = completed
        return i
    }

    static func tasks(_ status: TaskFilter.Status = .all, types: [String] = [], state: Int64? = nil) -> TaskFilter {
        var f = TaskFilter()
        f.status = status
        f.taskTypes = types
        f.stateID = state
        return f
    }

    static let operations: [RouteCase] = [
        // Start / Complete / Query / Delete Service
        row("POST", "~/services/start", .route(.startService)),
        row("POST", "~/service/start", .route(.startService)),
        row("POST", "~/services/start/", .route(.startService)),
        row("POST", "~/services/start?x=1", .route(.startService)),
        row("POST", "~/services/21456878/end", .route(.endService(serviceID: 21456878))),
        row("POST", "~/services/21456878/end/", .route(.endService(serviceID: 21456878))),
        row("GET", "~/services/21456878", .route(.queryService(serviceID: 21456878, include: services()))),
        row("GET", "~/services/21456878/", .route(.queryService(serviceID: 21456878, include: services()))),
        row("GET", "~/services/1?", .route(.queryService(serviceID: 1, include: services()))),
        row("GET", "~/services/9223372036854775807", .route(.queryService(serviceID: .max, include: services()))),
        row("GET", "~/services/05", .route(.queryService(serviceID: 5, include: services()))),
        row("GET", "~/services/1?active_states=true&completed_states=false&active_tasks=&completed_tasks=true",
            .route(.queryService(serviceID: 1, include: services(true, false, false, true)))),
        row("GET", "~/services/1?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true",
            .route(.queryService(serviceID: 1, include: services(true, true, true, true)))),
        row("GET", "~/services/1?completed_states=true", .route(.queryService(serviceID: 1, include: services(false, true)))),
        row("GET", "~/services/1?active_tasks=true", .route(.queryService(serviceID: 1, include: services(false, false, true)))),
        row("GET", "~/services/1?active_states", .route(.queryService(serviceID: 1, include: services()))),
        row("GET", "~/services/1?active_tasks=true&active_tasks=false", .route(.queryService(serviceID: 1, include: services()))),
        row("GET", "~/services/1?utm_source=x&active_states=true&&", .route(.queryService(serviceID: 1, include: services(true)))),
        row("GET", "~/services/1/?completed_tasks=true", .route(.queryService(serviceID: 1, include: services(false, false, false, true)))),
        row("GET", "~/services/1?active%5Fstates=%74rue", .route(.queryService(serviceID: 1, include: services(true)))),
        row("GET", "~/service/1?active_states=true", .route(.queryService(serviceID: 1, include: services(true)))),
        row("DELETE", "~/services/21456878", .route(.deleteService(serviceID: 21456878))),
        row("DELETE", "~/service/21456878/", .route(.deleteService(serviceID: 21456878))),
        // States
        row("POST", "~/services/1/states/start", .route(.startState(serviceID: 1))),
        row("POST", "~/service/1/states/start", .route(.startState(serviceID: 1))),
        row("POST", "~/services/1/states/2/end", .route(.endState(serviceID: 1, stateID: 2))),
        row("GET", "~/services/1/states/2", .route(.queryState(serviceID: 1, stateID: 2, include: states()))),
        row("GET", "~/services/1/states/2147483647", .route(.queryState(serviceID: 1, stateID: 2147483647, include: states()))),
        row("GET", "~/services/1/states/2?active_tasks=true&completed_tasks=true",
            .route(.queryState(serviceID: 1, stateID: 2, include: states(active: true, completed: true)))),
        row("GET", "~/services/1/states/2?completed_tasks=true&active_states=true",
            .route(.queryState(serviceID: 1, stateID: 2, include: states(completed: true)))),
        // Tasks
        row("POST", "~/services/21456878/tasks/start", .route(.startTask(serviceID: 21456878))),
        row("POST", "~/service/21456878/tasks/start", .route(.startTask(serviceID: 21456878))),
        row("POST", "~/services/1/tasks/15928/end", .route(.endTask(serviceID: 1, taskID: 15928))),
        row("GET", "~/services/21456878/tasks/15928", .route(.queryTask(serviceID: 21456878, taskID: 15928))),
        row("GET", "~/service/21456878/tasks/15928", .route(.queryTask(serviceID: 21456878, taskID: 15928))),
        row("GET", "~/service/21456878/tasks/15928/", .route(.queryTask(serviceID: 21456878, taskID: 15928))),
        row("GET", "~/services/1/tasks/2147483647", .route(.queryTask(serviceID: 1, taskID: 2147483647))),
        // Query Tasks
        row("GET", "~/services/1/tasks", .route(.queryTasks(serviceID: 1, filter: tasks()))),
        row("GET", "~/services/1/tasks/", .route(.queryTasks(serviceID: 1, filter: tasks()))),
        row("GET", "~/services/1/tasks/active", .route(.queryTasks(serviceID: 1, filter: tasks(.active)))),
        row("GET", "~/services/1/tasks/completed", .route(.queryTasks(serviceID: 1, filter: tasks(.completed)))),
        row("GET", "~/service/1/tasks/completed/", .route(.queryTasks(serviceID: 1, filter: tasks(.completed)))),
        row("GET", "~/services/1/tasks?task_types=a,b", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["a", "b"])))),
        row("GET", "~/services/1/tasks/active?task_types=customer+info,sales%20lead",
            .route(.queryTasks(serviceID: 1, filter: tasks(.active, types: ["customer info", "sales lead"])))),
        row("GET", "~/services/1/tasks?task_types=a&task_types=b", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["a", "b"])))),
        row("GET", "~/services/1/tasks?task_types=", .route(.queryTasks(serviceID: 1, filter: tasks()))),
        row("GET", "~/services/1/tasks?task_types=a,,b,", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["a", "b"])))),
        row("GET", "~/services/1/tasks?task_types=caf%C3%A9", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["café"])))),
        row("GET", "~/services/1/tasks?task_types=a%2Bb", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["a+b"])))),
        row("GET", "~/services/1/tasks?task_types=42&state_id=3", .route(.queryTasks(serviceID: 1, filter: tasks(types: ["42"], state: 3)))),
        row("GET", "~/services/1/tasks/completed?state_id=2147483647",
            .route(.queryTasks(serviceID: 1, filter: tasks(.completed, state: 2147483647)))),
        row("GET", "~/services/1/tasks?state_id=1&state_id=2", .route(.queryTasks(serviceID: 1, filter: tasks(state: 2)))),
        row("GET", "~/services/1/tasks?state_id=%33", .route(.queryTasks(serviceID: 1, filter: tasks(state: 3)))),
    ]

    static let notFound: [RouteCase] = [
        row("GET", "/", .notFound(path: "/")),
        row("GET", "/genesys/1/cs", .notFound(path: "/genesys/1/cs")),
        row("GET", "/genesys/1/cs/", .notFound(path: "/genesys/1/cs/")),
        row("GET", "/genesys/1/csx/services/1", .notFound(path: "/genesys/1/csx/services/1")),
        row("GET", "/genesys/1/services/1", .notFound(path: "/genesys/1/services/1")),
        row("GET", "/GENESYS/1/cs/services/1", .notFound(path: "/GENESYS/1/cs/services/1")),
        row("GET", "~/Services/1", .notFound(path: "/genesys/1/cs/Services/1")),
        row("GET", "~/services", .notFound(path: "/genesys/1/cs/services")),
        row("POST", "~/services", .notFound(path: "/genesys/1/cs/services")),
        row("GET", "~/servicess/1", .notFound(path: "/genesys/1/cs/servicess/1")),
        row("GET", "~//services/1", .notFound(path: "/genesys/1/cs//services/1")),
        row("GET", "~/services/1//", .notFound(path: "/genesys/1/cs/services/1//")),
        row("GET", "~/services/1/states", .notFound(path: "/genesys/1/cs/services/1/states")),
        row("GET", "~/services/1/states?x=1", .notFound(path: "/genesys/1/cs/services/1/states")),
        row("GET", "~/services/1/foo", .notFound(path: "/genesys/1/cs/services/1/foo")),
        row("GET", "~/services/1/tasks/2/extra", .notFound(path: "/genesys/1/cs/services/1/tasks/2/extra")),
        row("POST", "~/services/1/tasks/2/start", .notFound(path: "/genesys/1/cs/services/1/tasks/2/start")),
        row("POST", "~/services/1/states/2/end/more", .notFound(path: "/genesys/1/cs/services/1/states/2/end/more")),
        row("POST", "~/services/1/foo/2/end", .notFound(path: "/genesys/1/cs/services/1/foo/2/end")),
        row("POST", "~/services/1/foo/start", .notFound(path: "/genesys/1/cs/services/1/foo/start")),
        row("GET", "genesys/1/cs/services/1", .notFound(path: "genesys/1/cs/services/1")),
    ]

    static let methodNotAllowed: [RouteCase] = [
        row("GET", "~/services/start", .methodNotAllowed(["POST"])),
        row("PUT", "~/services/start", .methodNotAllowed(["POST"])),
        row("PUT", "~/services/1", .methodNotAllowed(["GET", "DELETE"])),
        row("POST", "~/services/1", .methodNotAllowed(["GET", "DELETE"])),
        row("PATCH", "~/service/1", .methodNotAllowed(["GET", "DELETE"])),
        row("HEAD", "~/services/1", .methodNotAllowed(["GET", "DELETE"])),
        row("get", "~/services/1", .methodNotAllowed(["GET", "DELETE"])),
        row("PUT", "~/services/abc", .methodNotAllowed(["GET", "DELETE"])),
        row("GET", "~/services/1/end", .methodNotAllowed(["POST"])),
        row("DELETE", "~/services/1/end", .methodNotAllowed(["POST"])),
        row("POST", "~/services/end", .methodNotAllowed(["GET", "DELETE"])),
        row("POST", "~/services/1/tasks", .methodNotAllowed(["GET"])),
        row("DELETE", "~/services/1/states/start", .methodNotAllowed(["POST"])),
        row("GET", "~/services/1/tasks/start", .methodNotAllowed(["POST"])),
        row("POST", "~/services/1/tasks/active", .methodNotAllowed(["GET"])),
        row("DELETE", "~/services/1/tasks/completed", .methodNotAllowed(["GET"])),
        row("POST", "~/services/1/states/2", .methodNotAllowed(["GET"])),
        row("DELETE", "~/services/1/tasks/2", .methodNotAllowed(["GET"])),
        row("GET", "~/services/1/states/2/end", .methodNotAllowed(["POST"])),
        row("GET", "~/services/1/tasks/2/end", .methodNotAllowed(["POST"])),
    ]

    static let invalid: [RouteCase] = {
        var rows: [RouteCase] = []
        for id in ["abc", "0", "-1", "9223372036854775808", "99999999999999999999", "+5", "%205", " 5", "5 ", "1.0", "1e3", "0x10", "00000000000000000001", "１"] {
            rows.append(row("GET", "~/services/" + id, .invalid(mentioning: "service_id")))
            rows.append(row("POST", "~/services/" + id + "/tasks/start", .invalid(mentioning: "service_id")))
        }
        for id in ["abc", "0", "-1", "2147483648", "9223372036854775807", "+5", " 5", "%35"] {
            rows.append(row("GET", "~/services/1/tasks/" + id, .invalid(mentioning: "task_id")))
            rows.append(row("POST", "~/services/1/tasks/" + id + "/end", .invalid(mentioning: "task_id")))
            rows.append(row("GET", "~/services/1/states/" + id, .invalid(mentioning: "state_id")))
            rows.append(row("POST", "~/services/1/states/" + id + "/end", .invalid(mentioning: "state_id")))
        }
        rows += [
            row("POST", "~/services/0/end", .invalid(mentioning: "service_id")),
            row("GET", "~/services/end", .invalid(mentioning: "service_id")),
            row("GET", "~/services/0/tasks/active", .invalid(mentioning: "service_id")),
            row("POST", "~/services/x/states/start", .invalid(mentioning: "service_id")),
            row("DELETE", "~/services/-3", .invalid(mentioning: "service_id")),
            // Flags
            row("GET", "~/services/1?active_states=yes", .invalid(mentioning: "active_states")),
            row("GET", "~/services/1?active_states=TRUE", .invalid(mentioning: "active_states")),
            row("GET", "~/services/1?completed_states=1", .invalid(mentioning: "completed_states")),
            row("GET", "~/services/1?active_tasks=no", .invalid(mentioning: "active_tasks")),
            row("GET", "~/services/1?completed_tasks=0", .invalid(mentioning: "completed_tasks")),
            row("GET", "~/services/1?active_states=true%20", .invalid(mentioning: "active_states")),
            row("GET", "~/services/1/states/2?active_tasks=yes", .invalid(mentioning: "active_tasks")),
            row("GET", "~/services/1/states/2?completed_tasks=False", .invalid(mentioning: "completed_tasks")),
            // state_id filter
            row("GET", "~/services/1/tasks?state_id=0", .invalid(mentioning: "state_id")),
            row("GET", "~/services/1/tasks?state_id=-1", .invalid(mentioning: "state_id")),
            row("GET", "~/services/1/tasks?state_id=abc", .invalid(mentioning: "state_id")),
            row("GET", "~/services/1/tasks?state_id=2147483648", .invalid(mentioning: "state_id")),
            row("GET", "~/services/1/tasks?state_id=+3", .invalid(mentioning: "state_id")),
            row("GET", "~/services/1/tasks/active?state_id=", .invalid(mentioning: "state_id")),
            // Percent-encoding
            row("GET", "~/services/1/tasks?task_types=%", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/tasks?task_types=%2", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/tasks?task_types=%zz", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/tasks?task_types=%G1", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/tasks?task_types=a%", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/tasks?task_types=%C3%28", .invalid(mentioning: "UTF-8")),
            row("GET", "~/services/1/tasks?task_types=%FF", .invalid(mentioning: "UTF-8")),
            row("GET", "~/services/1?active_states=%7", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1?%=true", .invalid(mentioning: "percent-encoding")),
            row("GET", "~/services/1/states/2?active_tasks=%ZZ", .invalid(mentioning: "percent-encoding")),
        ]
        return rows
    }()

    static let otherBase: [RouteCase] = [
        row("POST", "/api/v2/services/start", .route(.startService), basePath: "/api/v2"),
        row("GET", "/api/v2/service/3/tasks/4", .route(.queryTask(serviceID: 3, taskID: 4)), basePath: "/api/v2"),
        row("GET", "/api/v2/services/3/tasks?task_types=x", .route(.queryTasks(serviceID: 3, filter: tasks(types: ["x"]))), basePath: "/api/v2"),
        row("POST", "/genesys/1/cs/services/start", .notFound(path: "/genesys/1/cs/services/start"), basePath: "/api/v2"),
        row("POST", "/api/v2x/services/start", .notFound(path: "/api/v2x/services/start"), basePath: "/api/v2"),
        row("GET", "/api/v2/services/start", .methodNotAllowed(["POST"]), basePath: "/api/v2"),
        row("POST", "/services/start", .route(.startService), basePath: ""),
        row("GET", "/service/1/tasks/2", .route(.queryTask(serviceID: 1, taskID: 2)), basePath: ""),
    ]
}

private func actual(_ row: RouteCase) -> Result<RESTRoute, RouteError> {
    RESTRoute.parse(method: row.method, target: row.target, basePath: row.basePath)
}

private func expectRoute(_ row: RouteCase, sourceLocation: SourceLocation = #_sourceLocation) {
    let result = actual(row)
    switch (row.expected, result) {
    case (.route(let want), .success(let got)):
        #expect(got == want, sourceLocation: sourceLocation)
    case (.notFound(let want), .failure(.notFound(let got))):
        #expect(got == want, sourceLocation: sourceLocation)
    case (.methodNotAllowed(let want), .failure(.methodNotAllowed(let got))):
        #expect(got == want, sourceLocation: sourceLocation)
    case (.invalid(let fragment), .failure(.invalid(let message))):
        #expect(message.contains(fragment), "message: \(message)", sourceLocation: sourceLocation)
    default:
        Issue.record("expected \(row.expected), got \(result)", sourceLocation: sourceLocation)
    }
}

@Suite("REST routes")
struct RESTRouteTests {
    @Test("every operation of §2 routes to its case", arguments: RouteFixtures.operations)
    func operations(_ row: RouteCase) { expectRoute(row) }

    @Test("paths where no operation lives are notFound", arguments: RouteFixtures.notFound)
    func notFound(_ row: RouteCase) { expectRoute(row) }

    @Test("a known path with the wrong method is methodNotAllowed with the allowed list",
          arguments: RouteFixtures.methodNotAllowed)
    func methodNotAllowed(_ row: RouteCase) { expectRoute(row) }

    @Test("invalid ids, flags, filters and percent-encodings are invalid", arguments: RouteFixtures.invalid)
    func invalid(_ row: RouteCase) { expectRoute(row) }

    @Test("a base path other than the default", arguments: RouteFixtures.otherBase)
    func otherBase(_ row: RouteCase) { expectRoute(row) }

    @Test("invalid messages quote the offending value")
    func invalidMessages() {
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/abc")
            == .failure(.invalid("service_id must be an integer from 1 to 9223372036854775807, got 'abc'")))
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1/tasks/0")
            == .failure(.invalid("task_id must be an integer from 1 to 2147483647, got '0'")))
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1?active_states=yes")
            == .failure(.invalid("active_states must be true or false, got 'yes'")))
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1/tasks?state_id=x")
            == .failure(.invalid("state_id must be an integer from 1 to 2147483647, got 'x'")))
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1/tasks?task_types=%zz")
            == .failure(.invalid("malformed percent-encoding in query '%zz'")))
    }

    @Test("only the start and end operations carry a body", arguments: [
        (RESTRoute.startService, true),
        (.endService(serviceID: 1), true),
        (.startState(serviceID: 1), true),
        (.endState(serviceID: 1, stateID: 1), true),
        (.startTask(serviceID: 1), true),
        (.endTask(serviceID: 1, taskID: 1), true),
        (.queryService(serviceID: 1, include: ServiceInclude()), false),
        (.deleteService(serviceID: 1), false),
        (.queryState(serviceID: 1, stateID: 1, include: StateInclude()), false),
        (.queryTask(serviceID: 1, taskID: 1), false),
        (.queryTasks(serviceID: 1, filter: TaskFilter()), false),
    ])
    func takesBody(_ route: RESTRoute, _ expected: Bool) {
        #expect(route.takesBody == expected)
    }

    @Test("route errors map to the contract's errors")
    func routeErrors() {
        #expect(RouteError.notFound(path: "/x").contextError(method: "GET", path: "/x")
            == ContextError(status: 404, exception: "NotFoundException", message: "no operation at /x"))
        #expect(RouteError.methodNotAllowed(allowed: ["POST"]).contextError(method: "GET", path: "/genesys/1/cs/services/start")
            == ContextError(status: 405, exception: "MethodNotAllowedException",
                            message: "method GET is not allowed on /genesys/1/cs/services/start"))
        #expect(RouteError.invalid("bad").contextError(method: "GET", path: "/x")
            == ContextError(status: 400, exception: "ValidationException", message: "bad"))
    }

    @Test("the default base path is /genesys/1/cs")
    func defaultBase() {
        #expect(RESTRoute.defaultBasePath == "/genesys/1/cs")
    }

    @Test("a base path configured with a trailing slash routes like the same path without it",
          arguments: ["/api/v2/", "/"])
    func trailingSlashBase(_ basePath: String) {
        let target = (basePath == "/" ? "" : String(basePath.dropLast())) + "/services/start"
        #expect(RESTRoute.parse(method: "POST", target: target, basePath: basePath) == .success(.startService))
    }
}

@Suite("REST route: list parameters")
struct RESTRouteListTests {
    @Test("An encoded comma stays inside a task type name; a plain comma separates names")
    func encodedComma() {
        var filter = TaskFilter()
        filter.taskTypes = ["a,b", "c d"]
        #expect(RESTRoute.parse(method: "GET", target: "/genesys/1/cs/services/1/tasks?task_types=a%2Cb,c+d")
                == .success(.queryTasks(serviceID: 1, filter: filter)))
    }
}

/// The include flags are one table (`IncludeFlags.flags`): its names are the REST query's
/// parameters, its order the batch format's bits.
@Suite("Include flags")
struct IncludeFlagsTests {
    @Test("Every byte of the batch format: a flag per bit, unknown bits refused, and back")
    func bits() {
        for bits in 0...255 {
            let service = ServiceInclude(bits: UInt8(bits))
            #expect((service == nil) == (bits >= 16))
            #expect(service.map(\.bits) ?? UInt8(bits) == UInt8(bits))
            let state = StateInclude(bits: UInt8(bits))
            #expect((state == nil) == (bits >= 4))
            #expect(state.map(\.bits) ?? UInt8(bits) == UInt8(bits))
        }
        var include = ServiceInclude()
        include.completedStates = true
        include.activeTasks = true
        #expect(include.bits == 2 | 4)
    }

    @Test("The names set the flags; a name of no flag sets nothing; REST text and parse agree")
    func names() throws {
        var include = ServiceInclude()
        let known = include.set("completed_tasks", true)
        let unknown = include.set("completed", true)
        #expect(known && !unknown)
        var expected = ServiceInclude()
        expected.completedTasks = true
        #expect(include == expected)
        for bits in UInt8(0)..<16 {
            let route = RESTRoute.queryService(serviceID: 9, include: try #require(ServiceInclude(bits: bits)))
            #expect(RESTRoute.parse(method: "GET", target: route.target()) == .success(route))
        }
        for bits in UInt8(0)..<4 {
            let route = RESTRoute.queryState(serviceID: 9, stateID: 2, include: try #require(StateInclude(bits: bits)))
            #expect(RESTRoute.parse(method: "GET", target: route.target()) == .success(route))
        }
    }
}
