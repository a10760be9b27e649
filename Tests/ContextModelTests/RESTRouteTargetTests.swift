import Testing
@testable import ContextModel

@Suite("REST route targets")
struct RESTRouteTargetTests {
    static var routes: [RESTRoute] {
        var include = ServiceInclude()
        include.activeStates = true
        include.completedTasks = true
        var stateInclude = StateInclude()
        stateInclude.activeTasks = true
        var filter = TaskFilter()
        filter.status = .active
        filter.taskTypes = ["customer info", "a,b", "5", "x&y=z%+"]
        filter.stateID = 3
        var completed = TaskFilter()
        completed.status = .completed
        return [
            .startService, .endService(serviceID: 7), .queryService(serviceID: 7, include: ServiceInclude()),
            .queryService(serviceID: 7, include: include), .deleteService(serviceID: Int64.max),
            .startState(serviceID: 1), .endState(serviceID: 1, stateID: 2),
            .queryState(serviceID: 1, stateID: 2, include: StateInclude()),
            .queryState(serviceID: 1, stateID: 2, include: stateInclude),
            .startTask(serviceID: 21456878), .endTask(serviceID: 1, taskID: 2147483647),
            .queryTask(serviceID: 1, taskID: 15928), .queryTasks(serviceID: 1, filter: TaskFilter()),
            .queryTasks(serviceID: 1, filter: filter), .queryTasks(serviceID: 1, filter: completed),
        ]
    }

    @Test("Parsing a route's own method and target gives the route back", arguments: routes)
    func roundTrip(route: RESTRoute) {
        #expect(RESTRoute.parse(method: route.method, target: route.target()) == .success(route))
        #expect(RESTRoute.parse(method: route.method, target: route.target(basePath: "/x/"), basePath: "/x") == .success(route))
    }

    @Test("Targets are the contract's paths")
    func paths() {
        #expect(RESTRoute.startTask(serviceID: 21456878).target() == "/genesys/1/cs/services/21456878/tasks/start")
        #expect(RESTRoute.startTask(serviceID: 1).method == "POST")
        var include = ServiceInclude()
        include.activeTasks = true
        #expect(RESTRoute.queryService(serviceID: 2, include: include).target() == "/genesys/1/cs/services/2?active_tasks=true")
        var filter = TaskFilter()
        filter.taskTypes = ["customer info", "a,b"]
        #expect(RESTRoute.queryTasks(serviceID: 3, filter: filter).target() == "/genesys/1/cs/services/3/tasks?task_types=customer%20info,a%2Cb")
        #expect(RESTRoute.deleteService(serviceID: 4).method == "DELETE")
    }
}
