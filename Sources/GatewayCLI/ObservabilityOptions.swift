import GatewaySettings
import Logging
import NIOCore
import Observability

/// `metrics.listen` (`--metrics-listen`) of `gateway serve` and `gateway core` (README,
/// "Metrics"): the process's metrics and their own listener, or neither.
struct MetricsSetup {
    let listen: HostPort?

    init(settings: Settings) {
        listen = settings.optionalString("metrics.listen").flatMap { HostPort($0) }
    }

    /// The process's metrics when a listener is configured (swift-metrics bootstrapped onto
    /// its registry), else nil.
    func makeMetrics() -> ProcessMetrics? {
        guard listen != nil else { return nil }
        let metrics = ProcessMetrics()
        metrics.bootstrapMetricsSystem()
        return metrics
    }

    /// Starts the listener of `metrics`, if any, and says where.
    func startEndpoint(_ metrics: ProcessMetrics?, group: any EventLoopGroup, logger: Logger) async throws -> MetricsEndpoint? {
        guard let metrics, let address = listen else { return nil }
        let endpoint = try await MetricsEndpoint.start(host: address.host, port: address.port, metrics: metrics, group: group)
        logger.info("metrics listening", metadata: ["address": "http://\(address.host):\(endpoint.port)/metrics"])
        return endpoint
    }
}
