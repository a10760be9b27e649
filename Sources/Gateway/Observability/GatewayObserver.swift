import ContextModel
import GRPCServer
import HTTPServing
import Logging
import NIOCore
import Observability

/// The gateway's observer of one event loop: makes each call's trace context, counts its end
/// into the loop's metrics (when metrics are on), and writes the call's log line: `notice`
/// for a failed call, `debug` for the others (README, "Tracing"). On its loop only.
package final class GatewayObserver: GRPCCallObserver {
    /// nil: metrics off (no `--metrics-listen`); traces and log lines stay.
    let metrics: GatewayLoopMetrics?
    private var ids = TraceIDGenerator()
    private let logger: Logger

    init(metrics: GatewayLoopMetrics?, logger: Logger) {
        self.metrics = metrics
        self.logger = logger
    }

    package func traceContext(continuing incoming: TraceParent?) -> TraceContext {
        TraceContext(continuing: incoming, using: &ids)
    }

    package func connectionOpened() { metrics?.h2ConnectionsOpened &+= 1 }
    package func connectionClosed() { metrics?.h2ConnectionsClosed &+= 1 }
    package func streamOpened() { metrics?.h2Streams &+= 1 }

    package func callEnded(_ call: GRPCCallRecord) {
        let nanos = Int64(NIODeadline.now().uptimeNanoseconds &- call.startedNanos)
        let method = Self.methodIndex(path: call.path)
        metrics?.grpcCallEnded(method: method, code: call.code, nanos: nanos)
        let failed = call.code != 0
        guard logger.logLevel <= (failed ? .notice : .debug) else { return }
        let name = GatewayLoopMetrics.grpcMethods[method]
        let code = GRPCStatusCode(rawValue: call.code) ?? .unknown
        var trace = call.trace
        if trace == nil { trace = traceContext(continuing: nil) }  // refused before dispatch: still one id
        CallLog.write(logger, failed: failed, protocol: "grpc", method: name.method, status: code.description,
                 exception: call.status?.exception, tenant: call.tenant, nanos: nanos, trace: trace!,
                 path: call.path ?? "")
    }

    /// A REST (or gRPC-Web, health…) request on the gateway's port ended.
    /// `operation` is worked out only when it is needed (metrics on, or a line to write).
    package func httpEnded(operation: @autoclosure () -> Int, status: Int, startedNanos: UInt64, request: RESTRequest,
                   response: RESTResponse, trace: TraceContext) {
        let nanos = Int64(NIODeadline.now().uptimeNanoseconds &- startedNanos)
        let failed = status >= 400
        let logs = logger.logLevel <= (failed ? .notice : .debug)
        guard metrics != nil || logs else { return }
        let operation = operation()
        metrics?.httpCallEnded(operation: operation, status: status, nanos: nanos)
        guard logs else { return }
        CallLog.write(logger, failed: failed, protocol: "rest", method: GatewayLoopMetrics.httpOperations[operation],
                      status: String(status), exception: failed ? CallLog.exception(inBody: response.body) : nil,
                      tenant: request.tenant, nanos: nanos, trace: trace,
                      path: CallLog.path(target: request.target))
    }

    private static let methods = RPCMethod.allCases

    static func methodIndex(path: String?) -> Int {
        guard let path else { return GatewayLoopMetrics.grpcMethods.count - 1 }
        if let method = RPCMethod(path: path), let i = Self.methods.firstIndex(of: method) { return i }
        if ServerReflection.serves(path: path) { return GatewayLoopMetrics.grpcMethods.count - 2 }
        return GatewayLoopMetrics.grpcMethods.count - 1
    }
}

/// Every event loop's observer; the table is built once and never changed, and each entry is
/// used on its own loop only.
public struct GatewayObservers: GRPCCallObserving, @unchecked Sendable {
    let byLoop: [ObjectIdentifier: GatewayObserver]

    public func observer(for eventLoop: any EventLoop) -> (any GRPCCallObserver)? {
        byLoop[ObjectIdentifier(eventLoop)]
    }
}
