// The gateway's protobuf request decoder (`Codec.decodeRequest`, protobuf-c underneath, with
// `google.protobuf.Struct` extensions and the Struct depth guard), fed arbitrary messages.
//
// Input: byte 0 picks the RPC (`RPCMethod.allCases`, health included), byte 1 the depth limit
// (the contract's 64, or a small one so that the depth guard's edge is reached with a few
// bytes), the rest is the protobuf message.
//
// Invariants, beyond "no trap":
// - every message gives either a REST call or a gRPC status that is not OK, with a message;
// - a call's route belongs to the RPC and `target()` round-trips through the route parser;
// - a call's body is exactly what the core accepts: `Event.parse` with the same limits takes
//   it for the route's kind and phase, and its canonical JSON is the body itself (the gateway
//   never forwards what a REST client could not have sent, the extensions' depth included);
// - GET and DELETE calls carry no body.
import ContextModel
import FuzzSupport
@testable import GatewayCodec

private let methods = RPCMethod.allCases
private let depths = [64, 1, 2, 3, 5, 8]

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size >= 2 else { return 0 }
    let method = methods[Int(data[0]) % methods.count]
    let limits = JSONLimits(maxDepth: depths[Int(data[1]) % depths.count])
    let message = UnsafeRawBufferPointer(start: data + 2, count: size - 2)

    if method.isHealth {
        do {
            _ = try Codec.decodeHealthCheckRequest(message)
        } catch {
            check(error.code != .ok && !error.message.isEmpty, "health: refused with \(error)")
        }
    }
    let call: UpstreamCall
    do {
        call = try Codec.decodeRequest(method, message, limits: limits)
    } catch {
        check(error.code != .ok && !error.message.isEmpty, "\(method): refused with \(error)")
        return 0
    }
    check(!method.isHealth, "\(method) gave a REST call")
    checkRoute(call.route, of: method)
    let target = call.route.target()
    check(RESTRoute.parse(method: call.route.method, target: target) == .success(call.route),
          "\(method): \(call.route) → \(target.debugDescription) does not parse back")
    guard let (kind, phase) = event(of: call.route) else {
        check(call.body.readableBytes == 0, "\(method): \(call.route.method) call with a body")
        return 0
    }
    do {
        let event = try Event.parse(call.body, kind: kind, phase: phase, limits: limits)
        check(event.canonicalJSON == call.body,
              "\(method): the body is not canonical: \(show(call.body.readableBytesView)) vs \(show(event.canonicalJSON.readableBytesView))")
    } catch {
        fatalError("\(method): the core refuses the body the gateway built (\(error.message)): \(show(call.body.readableBytesView)) from \(show(UnsafeRawBufferPointer(rebasing: message[...])))")
    }
    return 0
}

private func checkRoute(_ route: RESTRoute, of method: RPCMethod) {
    let ok = switch (method, route) {
    case (.startService, .startService), (.completeService, .endService), (.queryService, .queryService),
         (.deleteService, .deleteService), (.startState, .startState), (.completeState, .endState),
         (.queryState, .queryState), (.startTask, .startTask), (.completeTask, .endTask),
         (.queryTask, .queryTask), (.queryTasks, .queryTasks): true
    default: false
    }
    check(ok, "\(method) gave the route \(route)")
}

private func event(of route: RESTRoute) -> (ResourceKind, EventPhase)? {
    switch route {
    case .startService: (.service, .start)
    case .endService: (.service, .end)
    case .startState: (.state, .start)
    case .endState: (.state, .end)
    case .startTask: (.task, .start)
    case .endTask: (.task, .end)
    default: nil
    }
}
