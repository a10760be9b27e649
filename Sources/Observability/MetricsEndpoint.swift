import HTTPServing
import Logging
import NIOCore
import NIOPosix

/// The metrics listener (`--metrics-listen`): its own socket, never the public port, so a
/// scrape needs no credentials and clients cannot read it. `GET /metrics` answers the
/// process's metrics in Prometheus's text format; anything else 404 (405 for another method
/// on `/metrics`). HTTP/1.1 keep-alive, through the same handler as the core.
public final class MetricsEndpoint: Sendable {
    public let localAddress: SocketAddress
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
        self.localAddress = channel.localAddress!
    }

    public var port: Int { localAddress.port ?? 0 }

    public static func start(host: String, port: Int, metrics: ProcessMetrics, group: any EventLoopGroup) async throws
        -> MetricsEndpoint {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: false)
                    try sync.addHandler(PipelinedHTTPHandler(responder: Responder(metrics: metrics)))
                }
            }
            .bind(host: host, port: port)
            .get()
        return MetricsEndpoint(channel: channel)
    }

    public func shutdown() async {
        try? await channel.close()
    }

    struct Responder: RESTResponder {
        let metrics: ProcessMetrics

        func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse) {
            (0, RESTResponse(status: 413))
        }

        func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
            let path = request.target.prefix { $0 != "?" }
            guard path == "/metrics" else {
                return eventLoop.makeSucceededFuture(RESTResponse(status: 404, body: Array("not found: GET /metrics\n".utf8),
                                                                  contentType: "text/plain"))
            }
            guard request.method == "GET" || request.method == "HEAD" else {
                return eventLoop.makeSucceededFuture(RESTResponse(status: 405, allow: ["GET"]))
            }
            let promise = eventLoop.makePromise(of: RESTResponse.self)
            let metrics = self.metrics
            promise.completeWithTask {
                RESTResponse(status: 200, body: await metrics.render(), contentType: ProcessMetrics.contentType)
            }
            return promise.futureResult
        }
    }
}
