import ContextModel
import NIOCore

/// What `gateway load` runs. Built once at start-up, then shared read-only by every connection.
public struct LoadConfiguration: Sendable {
    /// What one unit of work is.
    public enum Scenario: String, Sendable, CaseIterable {
        /// One StartService first (or `serviceID`), then one StartTask per unit on it.
        case startTask = "start-task"
        /// One unit is the vendor's sizing journey: `JourneyPlan`, 33 calls.
        case journey
    }

    /// What the calls travel over.
    public enum Transport: String, Sendable {
        /// gRPC over h2c (prior knowledge) to a gateway: nghttp2 + protobuf-c.
        case grpc
        /// The REST API of §2 over HTTP/1.1 keep-alive connections, JSON bodies: to a core
        /// (or anything serving the contract), for comparison.
        case rest
    }

    public var host = "127.0.0.1"
    public var port = 50051
    public var transport = Transport.grpc
    public var scenario = Scenario.startTask

    /// Connections opened, spread over the event loops.
    public var connections = 1
    /// Units in flight per connection at most: concurrent streams (gRPC), pipeline depth (REST).
    /// A journey has one call in flight at a time, so this is also the calls in flight.
    public var streams = 32
    /// Event loop threads; each connection lives on one of them.
    public var threads = 1

    /// How long to measure (after the warm-up). Nil: until `requests` units ran.
    public var duration: TimeAmount? = .seconds(10)
    /// Units to run in total (StartTask calls, or journeys), split over the connections. Nil:
    /// until `duration` passed. With both, whichever comes first.
    public var requests: Int?
    /// Open loop: units started per second in total, on a fixed schedule whatever the answers
    /// do; each call's latency counts from its intended send time (no coordinated omission).
    /// Nil: closed loop, each slot starts its next unit when the previous one ends.
    public var rate: Double?
    /// Run this long before measuring: calls started during it are neither counted nor timed.
    public var warmup = TimeAmount.zero

    /// `ContactCenterId` (§6): the `contactcenterid` metadata, or the REST header.
    public var tenant: String?
    /// Per call: sent as `grpc-timeout`, and enforced here too (DEADLINE_EXCEEDED; for REST, a
    /// call past it closes its connection). Nil: no deadline.
    public var timeout: TimeAmount? = .seconds(10)
    /// start-task: add tasks to this service instead of starting one (a missing one makes every
    /// call fail NOT_FOUND / 404, which is how a forced error is tested).
    public var serviceID: Int64?
    /// REST: where the API lives on the target.
    public var basePath = RESTRoute.defaultBasePath

    public init() {}
    public static var defaults: LoadConfiguration { LoadConfiguration() }

    /// The `:authority` / `Host` of every request.
    var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Why this configuration cannot run, or nil.
    public var problem: String? {
        if connections < 1 || streams < 1 || threads < 1 { return "connections, streams and threads must be at least 1" }
        if duration == nil && requests == nil { return "give a duration or a number of requests" }
        if let duration, duration <= .zero { return "the duration must be positive" }
        if let requests, requests < 1 { return "requests must be at least 1" }
        if let rate, !(rate > 0 && rate.isFinite) { return "the rate must be a positive number" }
        if warmup < .zero { return "the warm-up cannot be negative" }
        if let timeout, timeout <= .zero { return "the timeout must be positive" }
        if let tenant, tenant.isEmpty || tenant.utf8.count > 256 || !tenant.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return "the tenant must be 1 to 256 visible ASCII characters (§6)"
        }
        if let serviceID, serviceID < 1 { return "a service id is at least 1" }
        if serviceID != nil && scenario != .startTask { return "--service-id goes with the start-task scenario" }
        return nil
    }

    /// Units of `requests` for connection `index`: an even split, the first ones taking the
    /// remainder, so that no counter is shared between event loops.
    func quota(connection index: Int) -> Int? {
        guard let requests else { return nil }
        return requests / connections + (index < requests % connections ? 1 : 0)
    }
}

/// `grpc-timeout` (PROTOCOL-HTTP2.md: at most 8 digits and a unit): the finest unit whose
/// value fits, rounded up so that the server never sees a shorter deadline than ours.
public func grpcTimeoutValue(_ amount: TimeAmount) -> String {
    let nanos = max(amount.nanoseconds, 1)
    let units: [(Int64, Character)] = [
        (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"), (3_600_000_000_000, "H"),
    ]
    for (size, unit) in units {
        let value = (nanos + size - 1) / size
        if value <= 99_999_999 { return "\(value)\(unit)" }
    }
    return "99999999H"
}
