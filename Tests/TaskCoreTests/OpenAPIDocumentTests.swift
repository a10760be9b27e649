import Foundation
import Testing
import ContextModel
import HTTPServing
@testable import TaskCore

// gateway/openapi.json (embedded as `OpenAPIDocument.json`, kept current by check-generated.sh)
// against the route table: every operation of `RESTRoute` is in the document with its method
// and query parameters, and every path of the document is a route or one of the core's
// extension paths, with exactly the methods the router accepts.

/// The document's paths: template → methods (upper case) → operation.
private func documentPaths() throws -> (paths: [String: [String: [String: Any]]], components: [String: Any]) {
    let root = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json)) as? [String: Any])
    let rawPaths = try #require(root["paths"] as? [String: [String: Any]])
    var paths: [String: [String: [String: Any]]] = [:]
    for (template, item) in rawPaths {
        for (key, value) in item {
            guard let op = value as? [String: Any] else { continue }
            paths[template, default: [:]][key.uppercased()] = op
        }
    }
    return (paths, root["components"] as? [String: Any] ?? [:])
}

/// The document's template of a route's path (an exhaustive switch: a new operation fails
/// to compile until it is placed here, and then the test wants it in the document).
private func template(_ route: RESTRoute) -> String {
    switch route {
    case .startService: "/services/start"
    case .endService: "/services/{service_id}/end"
    case .queryService, .deleteService: "/services/{service_id}"
    case .startState: "/services/{service_id}/states/start"
    case .endState: "/services/{service_id}/states/{state_id}/end"
    case .queryState: "/services/{service_id}/states/{state_id}"
    case .startTask: "/services/{service_id}/tasks/start"
    case .endTask: "/services/{service_id}/tasks/{task_id}/end"
    case .queryTask: "/services/{service_id}/tasks/{task_id}"
    case .queryTasks(_, let filter):
        switch filter.status {
        case .all: "/services/{service_id}/tasks"
        case .active: "/services/{service_id}/tasks/active"
        case .completed: "/services/{service_id}/tasks/completed"
        }
    }
}

/// One route of each case, every query parameter set.
private let everyRoute: [RESTRoute] = {
    var include = ServiceInclude()
    include.activeStates = true; include.completedStates = true; include.activeTasks = true; include.completedTasks = true
    var stateInclude = StateInclude()
    stateInclude.activeTasks = true; stateInclude.completedTasks = true
    var routes: [RESTRoute] = [
        .startService, .endService(serviceID: 7), .queryService(serviceID: 7, include: include), .deleteService(serviceID: 7),
        .startState(serviceID: 7), .endState(serviceID: 7, stateID: 3), .queryState(serviceID: 7, stateID: 3, include: stateInclude),
        .startTask(serviceID: 7), .endTask(serviceID: 7, taskID: 5), .queryTask(serviceID: 7, taskID: 5),
    ]
    for status in [TaskFilter.Status.all, .active, .completed] {
        var filter = TaskFilter()
        filter.status = status
        filter.taskTypes = ["a"]
        filter.stateID = 3
        routes.append(.queryTasks(serviceID: 7, filter: filter))
    }
    return routes
}()

/// The paths the core serves beside `RESTRoute`'s: its extensions.
private let extensionPaths: Set<String> = [BatchCodec.path, ContextService.storeSuffix, OpenAPIDocument.path]

private func concrete(_ template: String) -> String {
    template.replacingOccurrences(of: "{service_id}", with: "7")
        .replacingOccurrences(of: "{state_id}", with: "3")
        .replacingOccurrences(of: "{task_id}", with: "5")
}

/// The query parameter names of an operation, `$ref`s resolved.
private func queryParameters(_ op: [String: Any], _ components: [String: Any]) -> Set<String> {
    let shared = components["parameters"] as? [String: [String: Any]] ?? [:]
    var names: Set<String> = []
    for case let parameter as [String: Any] in op["parameters"] as? [Any] ?? [] {
        var p = parameter
        if let ref = p["$ref"] as? String, let resolved = shared[String(ref.split(separator: "/").last!)] { p = resolved }
        if p["in"] as? String == "query", let name = p["name"] as? String { names.insert(name) }
    }
    return names
}

@Suite("The OpenAPI document and the route table")
struct OpenAPIDocumentTests {
    @Test("Every operation of the route table is in the document, with its method and query parameters",
          arguments: everyRoute)
    func routeIsDocumented(route: RESTRoute) throws {
        let (paths, components) = try documentPaths()
        let target = route.target()
        let path = String(target.prefix { $0 != "?" })
        // The template is right: filled in, it is the path the route table makes.
        #expect(RESTRoute.defaultBasePath + concrete(template(route)) == path)
        let op = try #require(paths[template(route)]?[route.method], "\(route.method) \(template(route)) is not in the document")
        let documented = queryParameters(op, components)
        let query = target.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        for pair in query.split(separator: "&") {
            let name = String(pair.prefix { $0 != "=" })
            #expect(documented.contains(name), "query parameter \(name) of \(route.method) \(template(route)) is not documented")
        }
    }

    @Test("Every path of the document is a route (or an extension) with exactly the documented methods")
    func documentIsRouted() throws {
        let (paths, _) = try documentPaths()
        #expect(!paths.isEmpty)
        for (template, operations) in paths {
            let methods = Set(operations.keys)
            if extensionPaths.contains(template) {
                continue
            }
            let target = RESTRoute.defaultBasePath + concrete(template)
            for method in ["GET", "POST", "DELETE", "PUT", "PATCH"] {
                let parsed = RESTRoute.parse(method: method, target: target)
                if methods.contains(method) {
                    guard case .success(let route) = parsed else {
                        Issue.record("\(method) \(template) is documented but not routed: \(parsed)")
                        continue
                    }
                    #expect(route.method == method)
                    #expect(OpenAPIDocumentTests.documentTemplate(route) == template)
                } else {
                    guard case .failure(.methodNotAllowed(let allowed)) = parsed else {
                        Issue.record("\(method) \(template) is routed but not documented: \(parsed)")
                        continue
                    }
                    #expect(Set(allowed) == methods.intersection(["GET", "POST", "DELETE"]),
                            "\(template): Allow \(allowed), documented \(methods.sorted())")
                }
            }
        }
        // The extensions documented are exactly the core's.
        #expect(Set(paths.keys).intersection(extensionPaths) == extensionPaths)
    }

    @Test("The served document is the committed one")
    func servedByTheCore() async throws {
        let service = ContextService(store: InMemoryTaskStore())
        let answer = await service.handle(CoreRequest(method: "GET", target: RESTRoute.defaultBasePath + OpenAPIDocument.path))
        #expect(answer.status == 200)
        #expect(answer.bodyBytes == OpenAPIDocument.json)
        let post = await service.handle(CoreRequest(method: "POST", target: RESTRoute.defaultBasePath + OpenAPIDocument.path))
        #expect(post.status == 405)
        #expect(post.allow == ["GET"])
    }

    /// `template(_:)`, reachable where a local named `template` hides it.
    static func documentTemplate(_ route: RESTRoute) -> String { template(route) }
}
