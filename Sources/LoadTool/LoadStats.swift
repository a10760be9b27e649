import Histogram

/// How one call ended.
enum CallOutcome: Sendable, Equatable {
    /// Success; the id a start answered with (0 for other calls).
    case ok(Int64)
    /// A failure: `ErrorCode` value and the peer's message, when it gave one.
    case failed(Int, String?)
}

/// The keys of `LoadStats.errors`: a gRPC status code (1...16), an HTTP status (100...599) for
/// REST, or one of the client-side failures of REST below (gRPC ones map onto gRPC codes, as
/// gRPC clients do: a passed deadline is DEADLINE_EXCEEDED, a lost connection UNAVAILABLE).
public enum ErrorCode {
    public static let timeout = -1
    public static let connectionClosed = -2
    public static let badAnswer = -3

    /// `NOT_FOUND` (gRPC), `404` (REST), `TIMEOUT`, `CONNECTION_CLOSED`, `BAD_ANSWER`.
    public static func name(_ code: Int, transport: LoadConfiguration.Transport) -> String {
        switch code {
        case timeout: return "TIMEOUT"
        case connectionClosed: return "CONNECTION_CLOSED"
        case badAnswer: return "BAD_ANSWER"
        default:
            if transport == .grpc, let status = GRPCCode.name(code) { return status }
            return String(code)
        }
    }
}

/// gRPC's code names (doc/statuscodes.md), without dragging the model in for twelve strings.
enum GRPCCode {
    static let cancelled = 1, unknown = 2, deadlineExceeded = 4, permissionDenied = 7, resourceExhausted = 8
    static let unimplemented = 12, internalError = 13, unavailable = 14, unauthenticated = 16

    static let names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
                        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
                        "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"]

    static func name(_ code: Int) -> String? { names.indices.contains(code) ? names[code] : nil }
}

/// What one connection measured; merged across connections for progress and the report.
/// Touched only on its connection's event loop (no locks per call): others get copies.
public struct LoadStats: Sendable {
    /// Microseconds per call, from its intended send time.
    public private(set) var latency = LoadStats.histogram()
    /// Microseconds per completed journey, from its intended start.
    public private(set) var journeyLatency = LoadStats.histogram()
    /// Calls answered (or failed) in the measured window.
    public private(set) var calls = 0
    public private(set) var ok = 0
    /// Failed calls by `ErrorCode` key.
    public private(set) var errors: [Int: Int] = [:]
    /// The first message seen for each error key: what to tell the user about it.
    public private(set) var errorMessages: [Int: String] = [:]
    /// Successful calls per `LoadMethod.rawValue`.
    public private(set) var okByMethod = [Int](repeating: 0, count: LoadMethod.allCases.count)
    public private(set) var journeysCompleted = 0
    /// Journeys cut short by a failed call (the calls after it are not made).
    public private(set) var journeysFailed = 0

    public init() {}

    /// Up to an hour in microseconds, 3 significant digits (0.1 % resolution) at about 180 kB.
    static func histogram() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    }

    mutating func record(_ method: LoadMethod, _ outcome: CallOutcome, nanos: Int64) {
        calls += 1
        let micros = UInt64(clamping: max(nanos, 0) / 1_000)
        _ = latency.record(min(micros, latency.highestTrackableValue))
        switch outcome {
        case .ok:
            ok += 1
            okByMethod[method.rawValue] += 1
        case .failed(let code, let message):
            errors[code, default: 0] += 1
            if errorMessages[code] == nil, let message { errorMessages[code] = message }
        }
    }

    mutating func journeyCompleted(nanos: Int64) {
        journeysCompleted += 1
        let micros = UInt64(clamping: max(nanos, 0) / 1_000)
        _ = journeyLatency.record(min(micros, journeyLatency.highestTrackableValue))
    }

    mutating func journeyFailed() {
        journeysFailed += 1
    }

    public var failed: Int { calls - ok }

    public mutating func merge(_ other: LoadStats) {
        latency.add(other.latency)
        journeyLatency.add(other.journeyLatency)
        calls += other.calls
        ok += other.ok
        errors.merge(other.errors, uniquingKeysWith: +)
        errorMessages.merge(other.errorMessages) { mine, _ in mine }
        for i in okByMethod.indices { okByMethod[i] += other.okByMethod[i] }
        journeysCompleted += other.journeysCompleted
        journeysFailed += other.journeysFailed
    }
}
