import ContextModel
import HTTPServing
import NIOCore
import Observability
public import Prometheus  // `CoreMetrics.init(registry:)` takes its registry

/// The task core's metrics (README, "Metrics"), in the process's swift-prometheus registry.
/// The core's calls wait for a commit (an fsync), so a registry look-up (a lock) and
/// swift-prometheus's atomics per call cost nothing measurable here; the gateway's hot path
/// keeps per-event-loop counters instead (`GatewayLoopMetrics`). Every label value is from a
/// fixed set: operation names and HTTP status codes, never a tenant or an id.
public final class CoreMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let commits: Counter
    private let commitWrites: ValueHistogram
    private let storeWriteSeconds: DurationHistogram
    private let storeReadSeconds: DurationHistogram

    static let latencyBuckets: [Duration] = LoopHistogram.latencyBounds.map { .nanoseconds($0) }

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        commits = registry.makeCounter(descriptor: MetricNameDescriptor(
            metricName: "cs_core_store_commits", unitName: "total",
            helpText: "Write transactions committed (one per single write, one per group of a batch's writes)."))
        commitWrites = registry.makeValueHistogram(descriptor: MetricNameDescriptor(
            metricName: "cs_core_store_commit_writes", unitName: "",
            helpText: "Writes per committed group (group commit)."), buckets: LoopHistogram.sizeBounds.map(Double.init))
        storeWriteSeconds = registry.makeDurationHistogram(descriptor: MetricNameDescriptor(
            metricName: "cs_core_store_duration", unitName: "seconds",
            helpText: "Store calls, from the call to its result (writes: the whole transaction and its commit)."),
            labels: [("operation", "write")], buckets: Self.latencyBuckets)
        storeReadSeconds = registry.makeDurationHistogram(descriptor: MetricNameDescriptor(
            metricName: "cs_core_store_duration", unitName: "seconds",
            helpText: "Store calls, from the call to its result (writes: the whole transaction and its commit)."),
            labels: [("operation", "read")], buckets: Self.latencyBuckets)
    }

    /// One HTTP request ended: `operation` is an operation name, `batch`, `store`, `openapi` or
    /// `unknown`.
    func requestEnded(operation: String, status: Int, nanos: Int64) {
        registry.makeCounter(descriptor: Self.requests, labels: [("operation", operation), ("code", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.requestSeconds, labels: [("operation", operation)],
                                       buckets: Self.latencyBuckets).recordNanoseconds(nanos)
    }

    /// One item of a batch was answered.
    func batchItemEnded(operation: String, status: Int) {
        registry.makeCounter(descriptor: Self.batchItems, labels: [("operation", operation), ("code", String(status))]).increment()
    }

    func wrote(writes: Int, nanos: Int64, committed: Bool) {
        storeWriteSeconds.recordNanoseconds(nanos)
        guard committed else { return }
        commits.increment()
        commitWrites.record(Double(writes))
    }

    func read(nanos: Int64) {
        storeReadSeconds.recordNanoseconds(nanos)
    }

    /// `kind`: busy, unavailable, outcome_unknown, failed.
    func storeError(kind: String) {
        registry.makeCounter(descriptor: Self.storeErrors, labels: [("kind", kind)]).increment()
    }

    // Computed: swift-prometheus's descriptor is not Sendable.
    static var requests: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "cs_core_http_requests", unitName: "total",
                             helpText: "HTTP requests answered by the core, by operation and status code.")
    }
    static var requestSeconds: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "cs_core_http_request_duration", unitName: "seconds",
                             helpText: "Core request latency, request read to answer ready.")
    }
    static var batchItems: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "cs_core_batch_items", unitName: "total",
                             helpText: "Operations answered inside batches, by operation and status code.")
    }
    static var storeErrors: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "cs_core_store_errors", unitName: "total",
                             helpText: "Store failures, by kind (busy, unavailable, outcome_unknown, failed).")
    }
}

extension ContextService {
    /// The metrics `operation` of a request: its route's name, or the extension it names.
    func operationName(_ request: CoreRequest) -> String {
        if isBatchPath(request.target) { return "batch" }
        if isStorePath(request.target) { return "store" }
        if OpenAPIDocument.isPath(request.target, basePath: configuration.basePath) { return "openapi" }
        if case .success(let route) = RESTRoute.parse(method: request.method, target: request.target,
                                                     basePath: configuration.basePath) {
            return route.operationName
        }
        return "unknown"
    }

    /// One request ended: its metrics and its log line (README, "Tracing"). A batch's items
    /// each get theirs from `observeBatch`.
    func observe(_ request: CoreRequest, _ response: CoreResponse, trace: TraceContext, startedNanos: UInt64) {
        let nanos = Int64(NIODeadline.now().uptimeNanoseconds &- startedNanos)
        let operation = operationName(request)
        metrics?.requestEnded(operation: operation, status: response.status, nanos: nanos)
        let failed = response.status >= 400
        CallLog.write(logger, failed: failed, protocol: operation == "batch" ? "batch" : "rest", method: operation,
                      status: String(response.status),
                      exception: failed ? CallLog.exception(inBody: response.body) : nil, tenant: request.tenant,
                      nanos: nanos, trace: trace, path: CallLog.path(target: request.target))
    }

    /// Every item of a batch: counted, and logged with the trace it came with (a failed item
    /// at `notice`), its duration the batch's.
    func observeBatch(_ items: [ReceivedBatchItem], _ responses: [CoreResponse], startedNanos: UInt64) {
        let nanos = Int64(NIODeadline.now().uptimeNanoseconds &- startedNanos)
        var random = SystemRandomNumberGenerator()
        for (item, response) in zip(items, responses) {
            let failed = response.status >= 400
            let logs = logger.logLevel <= (failed ? .notice : .debug)
            guard metrics != nil || logs else { continue }
            let route = try? item.route.get()
            let operation = route?.operationName ?? "unknown"
            metrics?.batchItemEnded(operation: operation, status: response.status)
            guard logs else { continue }
            // The path the single call would have had: built for the log line only.
            let target = route?.target(basePath: configuration.basePath) ?? String(RESTRoute.trimmedBase(configuration.basePath)) + BatchCodec.path
            CallLog.write(logger, failed: failed, protocol: "batch_item", method: operation, status: String(response.status),
                          exception: failed ? CallLog.exception(inBody: response.body) : nil, tenant: item.tenant,
                          nanos: nanos, trace: TraceContext(continuing: item.trace, using: &random),
                          path: CallLog.path(target: target))
        }
    }
}
