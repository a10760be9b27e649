/// A Prometheus histogram kept by one event loop in plain integers: no lock, no atomic, no
/// allocation per observation (the hot path's rules, shared/DESIGN.md §3). Owned by one
/// loop; a scrape copies it there (`Snapshot`) and sums the loops' copies.
public struct LoopHistogram: Sendable {
    /// Upper bounds of the buckets, in the recorded unit (nanoseconds, items…), ascending;
    /// `+Inf` is implicit.
    public let bounds: [Int64]
    /// Observations per bucket (not cumulative), one more than `bounds` for `+Inf`.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Int64 = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Int64]) {
        self.bounds = bounds
        self.counts = [UInt64](repeating: 0, count: bounds.count + 1)
    }

    @inline(__always)
    public mutating func record(_ value: Int64) {
        var i = 0
        while i < bounds.count && value > bounds[i] { i += 1 }
        counts[i] &+= 1
        sum &+= value
        count &+= 1
    }

    /// Adds another histogram with the same bounds (another loop's).
    public mutating func add(_ other: LoopHistogram) {
        precondition(other.bounds == bounds)
        for i in counts.indices { counts[i] &+= other.counts[i] }
        sum &+= other.sum
        count &+= other.count
    }

    /// Request latencies: 100 µs to 10 s, nanoseconds (rendered in seconds).
    public static let latencyBounds: [Int64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]
    /// Short waits (a batch's delay is 500 µs by default): 10 µs to 1 s, nanoseconds.
    public static let waitBounds: [Int64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
        25_000_000, 100_000_000, 1_000_000_000,
    ]
    /// Items per batch: powers of two up to the core's 1,000-item limit.
    public static let sizeBounds: [Int64] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
}
