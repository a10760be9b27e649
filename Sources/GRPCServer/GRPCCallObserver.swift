import ContextModel
import NIOCore

/// Told about a connection's gRPC calls as they end, for metrics and the log line of a failed
/// call (README, "Metrics", "Tracing"). One per event loop, used on that loop only: whatever
/// it counts needs no lock.
public protocol GRPCCallObserver: AnyObject {
    /// The trace context of a call: the client's `traceparent` continued, or a new trace.
    func traceContext(continuing incoming: TraceParent?) -> TraceContext
    func connectionOpened()
    func connectionClosed()
    func streamOpened()
    /// A native gRPC call ended (answered, reset by the client, or lost with its
    /// connection). Plain HTTP exchanges on the connection are the `RESTResponder`'s to count.
    func callEnded(_ call: GRPCCallRecord)
}

/// Finds the observer of an event loop; asked once per connection.
public protocol GRPCCallObserving: Sendable {
    func observer(for eventLoop: any EventLoop) -> (any GRPCCallObserver)?
}

/// One ended gRPC call, as the observer sees it.
public struct GRPCCallRecord {
    /// `:path`; nil when the headers never said.
    public var path: String?
    /// The status code sent (`GRPCStatusCode.rawValue`); CANCELLED (1) for a call the client
    /// reset or lost before it was answered, UNKNOWN (2) for an HTTP-level refusal (405, 415:
    /// what gRPC clients report for them).
    public var code: Int
    /// The status of a failed call, if one was sent.
    public var status: GRPCStatus?
    /// `NIODeadline.now().uptimeNanoseconds` when the stream opened.
    public var startedNanos: UInt64
    public var tenant: String?
    public var trace: TraceContext?
}
