// The REST route parser (`RESTRoute.parse(method:target:basePath:)`), fed an arbitrary
// request target: the core routes every REST call and every batch item with it.
//
// Input: byte 0 picks the method, byte 1 the base path, the rest is the target (UTF-8,
// invalid sequences replaced as an HTTP parser's String would be).
//
// Invariants, beyond "no trap":
// - a parsed route's `method` is the method it was parsed with;
// - its ids are in the contract's ranges (§1);
// - `target(basePath:)` round-trips: parse(method, route.target(basePath:)) gives the route
//   back, and the target of that is the same string (the gateway builds targets with it);
// - a refusal's contract error can be built, with a 4xx status.
import ContextModel
import FuzzSupport

private let methods = ["GET", "POST", "DELETE", "PUT", "HEAD", "get"]
private let basePaths = ["/genesys/1/cs", "/", "", "/genesys/1/cs/", "/a//"]
private let serviceRange: ClosedRange<Int64> = 1...Int64.max
private let childRange: ClosedRange<Int64> = 1...Int64(Int32.max)

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let method = methods[Int(data[0]) % methods.count]
    let basePath = basePaths[Int(data[1]) % basePaths.count]
    let target = String(decoding: UnsafeBufferPointer(start: data + 2, count: size - 2), as: UTF8.self)

    let route: RESTRoute
    switch RESTRoute.parse(method: method, target: target, basePath: basePath) {
    case .success(let r):
        route = r
    case .failure(let error):
        let status = error.contextError(method: method, path: target).status
        check((400...499).contains(status), "route error with status \(status)")
        return 0
    }
    check(route.method == method, "\(method) \(target.debugDescription) parsed as a \(route.method) route \(route)")
    checkRanges(route)
    let rebuilt = route.target(basePath: basePath)
    switch RESTRoute.parse(method: method, target: rebuilt, basePath: basePath) {
    case .success(let again):
        check(again == route, "\(target.debugDescription) → \(route) → \(rebuilt.debugDescription) → \(again)")
        check(again.target(basePath: basePath) == rebuilt, "target(basePath:) is not a fixed point: \(rebuilt.debugDescription)")
    case .failure(let error):
        fatalError("\(target.debugDescription) → \(route) → \(rebuilt.debugDescription) is refused: \(error)")
    }
    return 0
}

private func checkRanges(_ route: RESTRoute) {
    var service: Int64?
    var children: [Int64] = []
    switch route {
    case .startService: break
    case .endService(let s), .deleteService(let s), .startState(let s), .startTask(let s): service = s
    case .queryService(let s, _): service = s
    case .endState(let s, let c), .endTask(let s, let c), .queryTask(let s, let c): service = s; children = [c]
    case .queryState(let s, let c, _): service = s; children = [c]
    case .queryTasks(let s, let filter):
        service = s
        if let st = filter.stateID { children = [st] }
        check(!filter.taskTypes.contains(""), "an empty task type in \(route)")
    }
    if let service { check(serviceRange.contains(service), "service id \(service) out of range in \(route)") }
    for c in children { check(childRange.contains(c), "child id \(c) out of range in \(route)") }
}
