import ContextModel
import Observability

/// The gateway's counters of one event loop: plain integers and `LoopHistogram`s, written
/// only on that loop (by the HTTP/2 handlers, the REST responder, the batcher and the pool
/// of the loop), read only there too (`snapshot`, which a scrape runs on the loop). So the
/// hot path takes no lock and no atomic per call: an array index and an add
/// (README, "Metrics"; the cost is in gateway/bench/RESULTS.md).
package final class GatewayLoopMetrics {
    /// gRPC methods (`RPCMethod`, then server reflection, then anything else): the bounded
    /// `grpc_service`/`grpc_method` labels.
    static let grpcMethods: [(service: String, method: String)] =
        RPCMethod.allCases.map { method in
            let parts = method.path.dropFirst().split(separator: "/")
            return (String(parts[0]), String(parts[1]))
        } + [("grpc.reflection", "ServerReflectionInfo"), ("unknown", "unknown")]
    static let codes = 17  // gRPC status codes 0...16

    /// REST operations on the gateway's port: the contract's, then the gateway's own answers.
    package static let httpOperations = RESTRoute.operationNames + ["grpc_web", "health", "openapi", "cors_preflight", "unknown"]
    /// HTTP statuses the gateway answers; any other is counted as `other`.
    static let httpCodes = [200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 431, 500, 502, 503, 504]

    var grpcHandled = [UInt64](repeating: 0, count: grpcMethods.count * codes)
    var grpcLatency = [LoopHistogram](repeating: LoopHistogram(bounds: LoopHistogram.latencyBounds), count: grpcMethods.count)
    var httpHandled = [UInt64](repeating: 0, count: httpOperations.count * (httpCodes.count + 1))
    var httpLatency = [LoopHistogram](repeating: LoopHistogram(bounds: LoopHistogram.latencyBounds),
                                      count: httpOperations.count)
    var h2ConnectionsOpened: UInt64 = 0
    var h2ConnectionsClosed: UInt64 = 0
    var h2Streams: UInt64 = 0
    var batches: UInt64 = 0
    var batchItems = LoopHistogram(bounds: LoopHistogram.sizeBounds)
    /// Per call: from joining the queue to leaving in a batch.
    var batchWait = LoopHistogram(bounds: LoopHistogram.waitBounds)
    /// Per batch: sent to answered (or failed).
    var batchRoundTrip = LoopHistogram(bounds: LoopHistogram.latencyBounds)
    var shedQueueFull: UInt64 = 0
    var shedDeadline: UInt64 = 0
    var upstreamConnectFailures: UInt64 = 0
    var upstreamConnectionsLost: UInt64 = 0
    var upstreamStoreMismatches: UInt64 = 0
    var upstreamRefused: UInt64 = 0
    var upstreamBatchesRejected: UInt64 = 0

    @inline(__always)
    func grpcCallEnded(method: Int, code: Int, nanos: Int64) {
        grpcHandled[method * Self.codes + min(max(code, 0), Self.codes - 1)] &+= 1
        grpcLatency[method].record(nanos)
    }

    @inline(__always)
    func httpCallEnded(operation: Int, status: Int, nanos: Int64) {
        let code = Self.httpCodes.firstIndex(of: status) ?? Self.httpCodes.count
        httpHandled[operation * (Self.httpCodes.count + 1) + code] &+= 1
        httpLatency[operation].record(nanos)
    }

    /// A copy, taken on the loop, with what the loop's batcher and pool report of themselves.
    func snapshot(queued: Int, upstreamConnections: Int, ejections: Int, coresEjected: Int, resent: Int,
                  cancelledBeforeSend: Int) -> Snapshot {
        Snapshot(grpcHandled: grpcHandled, grpcLatency: grpcLatency, httpHandled: httpHandled, httpLatency: httpLatency,
                 h2ConnectionsOpened: h2ConnectionsOpened, h2ConnectionsClosed: h2ConnectionsClosed, h2Streams: h2Streams,
                 batches: batches, batchItems: batchItems, batchWait: batchWait, batchRoundTrip: batchRoundTrip,
                 shedQueueFull: shedQueueFull, shedDeadline: shedDeadline,
                 upstreamConnectFailures: upstreamConnectFailures, upstreamConnectionsLost: upstreamConnectionsLost,
                 upstreamStoreMismatches: upstreamStoreMismatches, upstreamRefused: upstreamRefused,
                 upstreamBatchesRejected: upstreamBatchesRejected,
                 queued: UInt64(queued), upstreamConnections: UInt64(upstreamConnections), ejections: UInt64(ejections),
                 coresEjected: UInt64(coresEjected), resent: UInt64(resent), cancelledBeforeSend: UInt64(cancelledBeforeSend))
    }

    struct Snapshot: Sendable {
        var grpcHandled: [UInt64]
        var grpcLatency: [LoopHistogram]
        var httpHandled: [UInt64]
        var httpLatency: [LoopHistogram]
        var h2ConnectionsOpened, h2ConnectionsClosed, h2Streams: UInt64
        var batches: UInt64
        var batchItems, batchWait, batchRoundTrip: LoopHistogram
        var shedQueueFull, shedDeadline: UInt64
        var upstreamConnectFailures, upstreamConnectionsLost, upstreamStoreMismatches, upstreamRefused,
            upstreamBatchesRejected: UInt64
        var queued, upstreamConnections, ejections, coresEjected, resent, cancelledBeforeSend: UInt64

        /// The sum over loops.
        mutating func add(_ o: Snapshot) {
            for i in grpcHandled.indices { grpcHandled[i] &+= o.grpcHandled[i] }
            for i in grpcLatency.indices { grpcLatency[i].add(o.grpcLatency[i]) }
            for i in httpHandled.indices { httpHandled[i] &+= o.httpHandled[i] }
            for i in httpLatency.indices { httpLatency[i].add(o.httpLatency[i]) }
            h2ConnectionsOpened &+= o.h2ConnectionsOpened
            h2ConnectionsClosed &+= o.h2ConnectionsClosed
            h2Streams &+= o.h2Streams
            batches &+= o.batches
            batchItems.add(o.batchItems)
            batchWait.add(o.batchWait)
            batchRoundTrip.add(o.batchRoundTrip)
            shedQueueFull &+= o.shedQueueFull
            shedDeadline &+= o.shedDeadline
            upstreamConnectFailures &+= o.upstreamConnectFailures
            upstreamConnectionsLost &+= o.upstreamConnectionsLost
            upstreamStoreMismatches &+= o.upstreamStoreMismatches
            upstreamRefused &+= o.upstreamRefused
            upstreamBatchesRejected &+= o.upstreamBatchesRejected
            queued &+= o.queued
            upstreamConnections &+= o.upstreamConnections
            ejections &+= o.ejections
            coresEjected = max(coresEjected, o.coresEjected)  // every loop sees the same cores
            resent &+= o.resent
            cancelledBeforeSend &+= o.cancelledBeforeSend
        }

        /// The families of README "Metrics", gateway part. Series with a zero count are left
        /// out of the per-code families (a scrape lists the codes that happened), except OK.
        func render() -> [UInt8] {
            var t = PrometheusText()
            let seconds = 1e-9
            t.family("grpc_server_handled_total", .counter, help: "gRPC calls ended, by method and status code (CANCELLED: reset by the client or lost with its connection).")
            for (m, name) in GatewayLoopMetrics.grpcMethods.enumerated() {
                for code in 0..<GatewayLoopMetrics.codes {
                    let n = grpcHandled[m * GatewayLoopMetrics.codes + code]
                    guard n > 0 else { continue }
                    t.sample("grpc_server_handled_total", [("grpc_service", name.service), ("grpc_method", name.method),
                                                           ("grpc_code", GRPCStatusCode(rawValue: code)!.description)], n)
                }
            }
            t.family("grpc_server_handling_seconds", .histogram, help: "gRPC call latency, stream opened to stream closed.")
            for (m, name) in GatewayLoopMetrics.grpcMethods.enumerated() where grpcLatency[m].count > 0 {
                t.histogram("grpc_server_handling_seconds", [("grpc_service", name.service), ("grpc_method", name.method)],
                            grpcLatency[m], scale: seconds)
            }
            t.family("cs_gateway_http_requests_total", .counter, help: "HTTP (REST, gRPC-Web, health) requests on the gateway's port, by operation and status code.")
            let width = GatewayLoopMetrics.httpCodes.count + 1
            for (o, operation) in GatewayLoopMetrics.httpOperations.enumerated() {
                for c in 0..<width {
                    let n = httpHandled[o * width + c]
                    guard n > 0 else { continue }
                    let code = c < GatewayLoopMetrics.httpCodes.count ? String(GatewayLoopMetrics.httpCodes[c]) : "other"
                    t.sample("cs_gateway_http_requests_total", [("operation", operation), ("code", code)], n)
                }
            }
            t.family("cs_gateway_http_request_duration_seconds", .histogram, help: "HTTP request latency on the gateway's port, request complete to answer.")
            for (o, operation) in GatewayLoopMetrics.httpOperations.enumerated() where httpLatency[o].count > 0 {
                t.histogram("cs_gateway_http_request_duration_seconds", [("operation", operation)], httpLatency[o], scale: seconds)
            }
            t.family("cs_gateway_http2_connections_opened_total", .counter, help: "HTTP/2 connections opened.")
            t.sample("cs_gateway_http2_connections_opened_total", h2ConnectionsOpened)
            t.family("cs_gateway_http2_connections", .gauge, help: "HTTP/2 connections open now.")
            t.sample("cs_gateway_http2_connections", h2ConnectionsOpened &- h2ConnectionsClosed)
            t.family("cs_gateway_http2_streams_total", .counter, help: "HTTP/2 streams opened by clients (gRPC calls and HTTP exchanges).")
            t.sample("cs_gateway_http2_streams_total", h2Streams)
            t.family("cs_gateway_batches_total", .counter, help: "Batches sent to the task core (vendor mode: groups of single calls).")
            t.sample("cs_gateway_batches_total", batches)
            t.family("cs_gateway_batch_items", .histogram, help: "Calls per batch sent.")
            t.histogram("cs_gateway_batch_items", batchItems)
            t.family("cs_gateway_batch_wait_seconds", .histogram, help: "Per call: queued to sent in a batch.")
            t.histogram("cs_gateway_batch_wait_seconds", batchWait, scale: seconds)
            t.family("cs_gateway_batch_round_trip_seconds", .histogram, help: "Per batch: sent to answered or failed.")
            t.histogram("cs_gateway_batch_round_trip_seconds", batchRoundTrip, scale: seconds)
            t.family("cs_gateway_queue_depth", .gauge, help: "Calls waiting for a batch now, all event loops.")
            t.sample("cs_gateway_queue_depth", queued)
            t.family("cs_gateway_shed_total", .counter, help: "Calls refused at once (RESOURCE_EXHAUSTED / 429), by reason.")
            t.sample("cs_gateway_shed_total", [("reason", "queue_full")], shedQueueFull)
            t.sample("cs_gateway_shed_total", [("reason", "deadline_too_soon")], shedDeadline)
            t.family("cs_gateway_calls_cancelled_before_send_total", .counter, help: "Queued calls dropped unsent: reset by the client or past their deadline.")
            t.sample("cs_gateway_calls_cancelled_before_send_total", cancelledBeforeSend)
            t.family("cs_gateway_upstream_resends_total", .counter, help: "Keyed calls sent again after their connection to the core broke.")
            t.sample("cs_gateway_upstream_resends_total", resent)
            t.family("cs_gateway_upstream_connections", .gauge, help: "Connections to task cores open now.")
            t.sample("cs_gateway_upstream_connections", upstreamConnections)
            t.family("cs_gateway_upstream_ejections_total", .counter, help: "Times a task core was ejected (per event loop's pool, summed).")
            t.sample("cs_gateway_upstream_ejections_total", ejections)
            t.family("cs_gateway_upstream_cores_ejected", .gauge, help: "Task cores ejected now (the most any event loop's pool has out).")
            t.sample("cs_gateway_upstream_cores_ejected", coresEjected)
            t.family("cs_gateway_upstream_errors_total", .counter, help: "Upstream failures, by kind.")
            t.sample("cs_gateway_upstream_errors_total", [("kind", "connect_failed")], upstreamConnectFailures)
            t.sample("cs_gateway_upstream_errors_total", [("kind", "connection_lost")], upstreamConnectionsLost)
            t.sample("cs_gateway_upstream_errors_total", [("kind", "store_mismatch")], upstreamStoreMismatches)
            t.sample("cs_gateway_upstream_errors_total", [("kind", "no_connection")], upstreamRefused)
            t.sample("cs_gateway_upstream_errors_total", [("kind", "batch_rejected")], upstreamBatchesRejected)
            return t.bytes
        }
    }
}
