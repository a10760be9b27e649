import ContextModel
import NIOCore
import Logging

/// The one log line of a call, the same in the gateway and the core (README, "Tracing"):
/// `notice` when it failed, `debug` otherwise, with
/// `protocol method status exception tenant duration_ms request_id trace_id span_id
/// parent_span_id path`. `request_id` is this process's span id for the call; the next hop
/// logs it as its `parent_span_id`, so `trace_id` finds the call in every process and the span
/// ids chain it. Never a body, a query string or an error message (they may carry a client's
/// data): `exception` is the contract's exception name.
public enum CallLog {
    public static func write(_ logger: Logger, failed: Bool, protocol proto: String, method: String, status: String,
                             exception: String?, tenant: String?, nanos: Int64, trace: TraceContext, path: String) {
        let level: Logger.Level = failed ? .notice : .debug
        guard logger.logLevel <= level else { return }
        var metadata: Logger.Metadata = [
            "protocol": "\(proto)", "method": "\(method)", "status": "\(status)",
            "tenant": "\(tenant ?? "")", "duration_ms": "\(Double(nanos / 1000) / 1000)",
            "request_id": "\(trace.spanIDHex)", "trace_id": "\(trace.traceIDHex)", "span_id": "\(trace.spanIDHex)",
            "path": "\(path)",
        ]
        if trace.parentSpanID != 0 { metadata["parent_span_id"] = "\(trace.parentSpanIDHex)" }
        if let exception { metadata["exception"] = "\(exception)" }
        logger.log(level: level, failed ? "call failed" : "call", metadata: metadata)
    }

    /// The `exception` of an error body (`{"message":…,"exception":…}`), if it is one.
    public static func exception(inBody body: ByteBuffer) -> String? {
        guard let members = try? StrictJSON.readObject(body) else { return nil }
        for m in members where m.key == "exception" {
            if case .string(let s) = m.value { return s }
        }
        return nil
    }

    /// The path of a request target, without the query.
    public static func path(target: String) -> String {
        String(target.prefix { $0 != "?" })
    }
}
