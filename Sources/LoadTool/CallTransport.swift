import NIOCore

/// Where a connection's driver sends its calls: one gRPC (HTTP/2) or REST (HTTP/1.1)
/// connection. Everything runs on the connection's event loop; answers come back through the
/// `CallSink`, tagged as sent.
protocol CallTransport: AnyObject {
    /// False once the connection takes no more calls (closed, refused, failed).
    var isUsable: Bool { get }
    /// Sends `call`; its outcome arrives later through `CallSink.completed(tag:outcome:)`, never
    /// from inside `send`. Writes of one event-loop tick share one flush.
    func send(_ call: LoadCall, tag: Int)
    /// start-task: encode the one request of the scenario (`LoadCall.step < 0`) once.
    func prepareStartTask(serviceID: Int64)
    /// Closes the connection; calls in flight fail.
    func close()
}

/// What a transport reports to its driver.
protocol CallSink: AnyObject {
    func completed(tag: Int, outcome: CallOutcome)
    /// The connection closed: every call in flight has been completed already.
    func transportClosed()
}

/// What both transports need to build requests: the run's configuration and each step's
/// content, encoded once for the run and only read afterwards.
final class RequestContent: Sendable {
    let configuration: LoadConfiguration
    let plan: JourneyPlan
    let proto: [ProtoContent]
    let protoStartTask: ProtoContent
    let rest: [[UInt8]]
    let restStartTask: [UInt8]

    init(_ configuration: LoadConfiguration, plan: JourneyPlan = .standard) {
        self.configuration = configuration
        self.plan = plan
        proto = plan.steps.map { ProtoContent($0.content) }
        protoStartTask = ProtoContent(JourneyPlan.startTaskContent)
        rest = plan.steps.map { RESTCodec.members($0.content, method: $0.method) }
        restStartTask = RESTCodec.members(JourneyPlan.startTaskContent, method: .startTask)
    }

    func proto(_ call: LoadCall) -> ProtoContent { call.step >= 0 ? proto[call.step] : protoStartTask }
    func rest(_ call: LoadCall) -> [UInt8] { call.step >= 0 ? rest[call.step] : restStartTask }
}
