import ArgumentParser
import Logging
import NIOCore
import Observability

/// `--metrics-listen` of `gateway serve` and `gateway core` (README, "Metrics").
struct ObservabilityOptions: ParsableArguments {
    @Option(help: "Serve Prometheus metrics (GET /metrics) on this address, host:port, e.g. 127.0.0.1:9464: its own listener, never the public port. Default: no metrics.")
    var metricsListen: String?

    func validate() throws {
        if let metricsListen, HostPort(metricsListen) == nil {
            throw ValidationError("--metrics-listen must be host:port, got '\(metricsListen)'")
        }
    }

    /// The process's metrics when `--metrics-listen` is given (swift-metrics bootstrapped onto
    /// its registry), else nil.
    func makeMetrics() -> ProcessMetrics? {
        guard metricsListen != nil else { return nil }
        let metrics = ProcessMetrics()
        metrics.bootstrapMetricsSystem()
        return metrics
    }

    /// Starts the listener of `metrics`, if any, and says where.
    func startEndpoint(_ metrics: ProcessMetrics?, group: any EventLoopGroup, logger: Logger) async throws -> MetricsEndpoint? {
        guard let metrics, let metricsListen, let address = HostPort(metricsListen) else { return nil }
        let endpoint = try await MetricsEndpoint.start(host: address.host, port: address.port, metrics: metrics, group: group)
        logger.info("metrics listening", metadata: ["address": "http://\(address.host):\(endpoint.port)/metrics"])
        return endpoint
    }
}
