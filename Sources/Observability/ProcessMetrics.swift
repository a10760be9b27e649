import CoreMetrics
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

/// The metrics of one process (`gateway serve` or `gateway core`): swift-prometheus's registry,
/// which also backs the swift-metrics API (`MetricsSystem` is bootstrapped with it once, so
/// any library's swift-metrics show up too), plus collectors for what is kept per event loop
/// and summed only when scraped. `render` is the body of `GET /metrics`.
public final class ProcessMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let collectors = NIOLockedValueBox<[@Sendable () async -> [UInt8]]>([])

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Makes `registry` the process's swift-metrics backend. At most once per process
    /// (swift-metrics traps on a second bootstrap): `gateway serve` with its embedded core
    /// shares one `ProcessMetrics`.
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    /// Adds text produced at scrape time (per-event-loop values summed over the loops).
    public func addCollector(_ collector: @escaping @Sendable () async -> [UInt8]) {
        collectors.withLockedValue { $0.append(collector) }
    }

    /// The whole exposition, text format 0.0.4.
    public func render() async -> [UInt8] {
        var out: [UInt8] = []
        registry.emit(into: &out)
        for collector in collectors.withLockedValue({ $0 }) {
            out += await collector()
        }
        return out
    }

    /// The media type of `render`'s bytes.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}
