import ContextModel
import Gateway
import HTTPServing
import NIOCore

/// REST on the gateway (CONTEXT-SERVICES.md §2): the request is routed and checked with the
/// core's own model code (`RESTRoute`, `RESTChecks`, `Event`), its body rewritten as canonical
/// JSON, and sent through the event loop's batcher and pool like a gRPC call; the core's
/// answer goes back as it came (status, `Location`, body), so a REST client cannot tell the
/// gateway from the core except by speed. Refusals made here are the ones the core would
/// make, with the same status and message.
extension ContextGateway {
    func respondREST(_ request: RESTRequest, eventLoop: any EventLoop, trace: TraceContext? = nil) -> EventLoopFuture<RESTResponse> {
        guard let upstream = pools.byLoop[ObjectIdentifier(eventLoop)] else {
            return eventLoop.makeSucceededFuture(RESTResponse(.internalError("no upstream for this event loop")))
        }
        let route: RESTRoute
        switch RESTRoute.parse(method: request.method, target: request.target, basePath: configuration.basePath) {
        case .success(let r):
            route = r
        case .failure(let error):
            return eventLoop.makeSucceededFuture(RESTResponse(error, method: request.method, target: request.target))
        }
        let body: ByteBuffer
        let key: (text: String, madeHere: Bool)?
        do throws(ContextError) {
            try RESTChecks.notRepeated(request.repeatedHeader)
            key = try upstream.key(for: route, clientKey: request.idempotencyKey)
            try RESTChecks.authorize(request.authorization, tokens: configuration.authTokens)
            _ = try RESTChecks.tenant(request.tenant)
            body = try RESTChecks.event(for: route, body: request.body, contentType: request.contentType,
                                        limits: configuration.limits)?.canonicalJSON ?? ByteBuffer()
        } catch {
            return eventLoop.makeSucceededFuture(RESTResponse(error))
        }
        let item = BatchItem(route, tenant: request.tenant, authorization: request.authorization, body: body,
                             idempotencyKey: key?.text, keyMadeByGateway: key?.madeHere ?? false, keyIsFresh: true,
                             trace: trace?.outgoing)
        let deadline = NIODeadline.now() + configuration.restTimeout
        let answer = RESTAnswer(eventLoop: eventLoop, timeout: configuration.restTimeout, deadline: deadline)
        upstream.batcher.send(item, deadline: deadline).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let response):
                answer.complete(RESTResponse(status: response.status, location: response.location,
                                             retryAfter: response.retryAfter, body: response.body,
                                             headers: response.replayed ? [RESTResponse.replayedHeader] : []))
            case .failure(let error):
                answer.complete(Self.restResponse(for: error))
            }
        }
        return answer.promise.futureResult
    }

    /// What a REST call that got no answer from the core is told (the REST side of
    /// `status(for:)`): shed → 429, unreachable → 503, both with `Retry-After`.
    static func restResponse(for error: any Error) -> RESTResponse {
        switch error as? UpstreamError {
        case .overloaded(let message):
            return RESTResponse(.overloaded(status: 429, message), retryAfter: 1)
        case .unavailable(let message), .notSent(let message):
            return RESTResponse(.overloaded(status: 503, message), retryAfter: 1)
        case .deadlineExceeded:
            return RESTResponse(.gatewayTimeout("the task core did not answer in time; the request may or may not have been applied"))
        case .rejected(let error):
            return RESTResponse(error)
        case nil:
            return RESTResponse(.overloaded(status: 503, "\(error)"), retryAfter: 1)
        }
    }

    /// `GET {readyPath}`: ready (`Readiness`) and a core reachable; else 503 with what is missing.
    func respondReady(eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
        let state = readiness.state
        guard state == .ready else {
            let status = state == .starting ? "STARTING" : "DRAINING"
            return eventLoop.makeSucceededFuture(RESTResponse(status: 503, retryAfter: 1, body: Array(#"{"status":"\#(status)"}"#.utf8)))
        }
        return respondHealth(eventLoop: eventLoop).map { health in
            health.status == 200
                ? RESTResponse(status: 200, body: Array(#"{"status":"READY"}"#.utf8))
                : RESTResponse(status: 503, retryAfter: 1, body: Array(#"{"status":"NO_CORE"}"#.utf8))
        }
    }

    /// `GET {healthPath}` (liveness) for load balancers: 200 while a task core can be reached.
    func respondHealth(eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
        guard let upstream = pools.byLoop[ObjectIdentifier(eventLoop)] else {
            return eventLoop.makeSucceededFuture(RESTResponse(.internalError("no upstream for this event loop")))
        }
        return upstream.pool.isReachable().map { reachable in
            reachable
                ? RESTResponse(status: 200, body: Array(#"{"status":"SERVING"}"#.utf8))
                : RESTResponse(status: 503, retryAfter: 1, body: Array(#"{"status":"NOT_SERVING"}"#.utf8))
        }
    }
}

/// The answer of one REST call: the core's, or a 504 once the gateway's REST timeout passed
/// (the call may still be applied; it is never resent).
private final class RESTAnswer {
    let promise: EventLoopPromise<RESTResponse>
    private var timer: Scheduled<Void>?
    private var done = false

    init(eventLoop: any EventLoop, timeout: TimeAmount, deadline: NIODeadline) {
        promise = eventLoop.makePromise(of: RESTResponse.self)
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            self?.complete(RESTResponse(.gatewayTimeout(
                "the task core did not answer within \(timeout.nanoseconds / 1_000_000) ms; the request may or may not have been applied")))
        }
    }

    func complete(_ response: RESTResponse) {
        guard !done else { return }
        done = true
        timer?.cancel()
        timer = nil
        promise.succeed(response)
    }
}
