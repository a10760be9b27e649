import ContextModel
import Gateway
import GRPCServer
import HTTPServing
import NIOCore

/// Everything on the gateway's port that is not native gRPC, over HTTP/1.1 or HTTP/2: CORS
/// preflights, gRPC-Web calls (to the same service as native gRPC), the HTTP health check,
/// and REST (`ContextGateway+REST.swift`).
public struct GatewayHTTPService: RESTResponder {
    let gateway: ContextGateway
    /// Largest gRPC-Web request message: the native gRPC server's limit (one setting,
    /// `gateway.max-message-bytes`, for both).
    let maxMessageBytes: Int

    public init(gateway: ContextGateway, grpc: GRPCServerHandler.Configuration = .defaults) {
        self.gateway = gateway
        self.maxMessageBytes = grpc.maxMessageBytes
    }

    private var configuration: ContextGateway.Configuration { gateway.configuration }

    public func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse) {
        if ContextGateway.isRPCPath(target) {
            // gRPC-Web: one message and its prefix, base64 in text mode (4 bytes per 3).
            let limit = (maxMessageBytes + 5 + 2) / 3 * 4
            return (limit, RESTResponse(.payloadTooLarge(limit: limit)))
        }
        let limit = configuration.limits.maxBytes
        return (limit, RESTResponse(.payloadTooLarge(limit: limit)))
    }

    public func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
        guard let observer = gateway.pools.byLoop[ObjectIdentifier(eventLoop)]?.observer else {
            return respond(to: request, eventLoop: eventLoop, trace: nil).answer
        }
        // README, "Tracing": the client's traceparent continued (a malformed one is ignored),
        // else a new trace; one line per failed request, metrics when on.
        let started = NIODeadline.now().uptimeNanoseconds
        let trace = observer.traceContext(continuing: request.headers.first(name: "traceparent").flatMap(TraceParent.init))
        let (answer, operation) = respond(to: request, eventLoop: eventLoop, trace: trace)
        answer.assumeIsolated().whenSuccess { response in
            observer.httpEnded(operation: operation ?? Self.operationIndex(request, basePath: configuration.basePath),
                               status: response.status, startedNanos: started, request: request, response: response,
                               trace: trace)
        }
        return answer
    }

    /// The `operation` label of a REST call (README, "Metrics"): its route's name, or
    /// `unknown` for a path that is no route.
    static func operationIndex(_ request: RESTRequest, basePath: String) -> Int {
        if case .success(let route) = RESTRoute.parse(method: request.method, target: request.target, basePath: basePath),
           let i = RESTRoute.operationNames.firstIndex(of: route.operationName) {
            return i
        }
        return GatewayLoopMetrics.httpOperations.count - 1
    }

    private static func named(_ operation: String) -> Int {
        GatewayLoopMetrics.httpOperations.firstIndex(of: operation)!
    }

    /// The answer, and the `operation` label when known without routing (nil: a REST call).
    private func respond(to request: RESTRequest, eventLoop: any EventLoop, trace: TraceContext?)
        -> (answer: EventLoopFuture<RESTResponse>, operation: Int?) {
        let origin = request.headers.first(name: "origin")
        let allowed = origin.flatMap { allowedOrigin($0) }
        if request.method == "OPTIONS", let origin, request.headers.contains(name: "access-control-request-method") {
            return (eventLoop.makeSucceededFuture(preflight(request, origin: origin, allowed: allowed)), Self.named("cors_preflight"))
        }
        // CORS on the actual request (Fetch standard): the allowed origin, and the headers a
        // browser script may read: gRPC-Web's status and our exception, REST's Location.
        let cors: [RESTResponse.Field] = allowed.map {
            [.init("access-control-allow-origin", $0), .init("vary", "Origin"),
             .init("access-control-expose-headers", "grpc-status, grpc-message, cs-exception, location, retry-after")]
        } ?? []
        func withCORS(_ response: RESTResponse) -> RESTResponse {
            guard !cors.isEmpty else { return response }
            var response = response
            response.headers += cors
            return response
        }
        switch GRPCWeb.classify(contentType: request.contentType) {
        case .call(let mode):
            return (GRPCWeb.serve(request, mode: mode, service: gateway, eventLoop: eventLoop,
                                  maxMessageBytes: maxMessageBytes, headers: cors, trace: trace), Self.named("grpc_web"))
        case .unsupported(let response):
            return (eventLoop.makeSucceededFuture(withCORS(response)), Self.named("grpc_web"))
        case nil:
            break
        }
        if Self.isNativeGRPC(request.contentType) {
            // Only reachable over HTTP/1.1: on HTTP/2 these go to the gRPC handler.
            return (eventLoop.makeSucceededFuture(withCORS(RESTResponse(status: 415, body: ContextError(
                status: 415, exception: "UnsupportedMediaTypeException",
                message: "gRPC needs HTTP/2 (h2c with prior knowledge, or TLS with ALPN h2); over HTTP/1.1 use gRPC-Web").jsonBody))),
                    Self.named("unknown"))
        }
        if request.method == "GET", request.target == configuration.healthPath {
            return (gateway.respondHealth(eventLoop: eventLoop).map(withCORS), Self.named("health"))
        }
        if request.method == "GET", request.target == configuration.readyPath {
            return (gateway.respondReady(eventLoop: eventLoop).map(withCORS), Self.named("health"))  // a probe, as health
        }
        if OpenAPIDocument.isPath(request.target, basePath: configuration.basePath) {
            // Answered here, not forwarded: the core's document minus the core's own extensions.
            return (eventLoop.makeSucceededFuture(withCORS(OpenAPIDocument.response(
                method: request.method, target: request.target, body: OpenAPIDocument.gatewayJSON))), Self.named("openapi"))
        }
        let answer = gateway.respondREST(request, eventLoop: eventLoop, trace: trace)
        return (cors.isEmpty ? answer : answer.map(withCORS), nil)
    }

    /// Answered here at once, without the core: no admission slot (health must answer while
    /// calls for the core wait).
    public func needsAdmission(method: String, target: String) -> Bool {
        if method == "OPTIONS" || target.utf8.starts(with: "/grpc.".utf8) { return false }
        if method == "GET", target == configuration.healthPath || target == configuration.readyPath { return false }
        return !OpenAPIDocument.isPath(target, basePath: configuration.basePath)
    }

    static func isNativeGRPC(_ contentType: String?) -> Bool {
        guard let base = RESTChecks.mediaType(contentType) else { return false }
        return base == "application/grpc" || base.hasPrefix("application/grpc+")
    }

    /// The value of `Access-Control-Allow-Origin` for `origin`, nil when it is not allowed.
    private func allowedOrigin(_ origin: String) -> String? {
        let origins = configuration.corsAllowedOrigins
        if origins.contains(origin) { return origin }
        if origins.contains("*") { return origin }  // echoed, so credentials keep working
        return nil
    }

    /// A CORS preflight (Fetch standard §3.2.2): allowed origins get the methods and request
    /// headers the API uses; others a 403 in the contract's error shape.
    private func preflight(_ request: RESTRequest, origin: String, allowed: String?) -> RESTResponse {
        guard let allowed else {
            return RESTResponse(status: 403, body: ContextError(
                status: 403, exception: "ForbiddenException",
                message: "origin \(origin) is not allowed by this gateway's CORS configuration").jsonBody)
        }
        let requested = request.headers.first(name: "access-control-request-headers")
        return RESTResponse(status: 204, headers: [
            .init("access-control-allow-origin", allowed),
            .init("vary", "Origin"),
            .init("access-control-allow-methods", "GET, POST, DELETE, OPTIONS"),
            .init("access-control-allow-headers", requested ?? "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, contactcenterid"),
            .init("access-control-allow-credentials", "true"),
            .init("access-control-max-age", "86400"),
        ])
    }
}
