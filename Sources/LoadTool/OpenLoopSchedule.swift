/// The intended start times of one connection's units in an open-loop run: unit `k` is due at
/// `start + offset + k × interval`, whatever happened to the units before it. Latency counts
/// from these times, so a stall shows up in every call it delayed rather than in one
/// (Gil Tene, "How NOT to measure latency": coordinated omission).
///
/// `C` connections sharing a total rate `R` each get interval `C/R` and offsets `i/R`, so their
/// merged schedule is one evenly spaced train at `R`. Times are nanoseconds on any monotonic
/// clock (the caller's `NIODeadline.uptimeNanoseconds`); pure, so it is tested without one.
public struct OpenLoopSchedule: Sendable, Equatable {
    public let start: Int64
    public let intervalNanos: Double
    public let offsetNanos: Double

    public init(start: Int64, intervalNanos: Double, offsetNanos: Double = 0) {
        precondition(intervalNanos > 0, "an open loop needs a positive interval")
        self.start = start
        self.intervalNanos = intervalNanos
        self.offsetNanos = offsetNanos
    }

    /// Connection `index` of `connections` sharing `ratePerSecond` units per second.
    public init(start: Int64, ratePerSecond: Double, connection index: Int, of connections: Int) {
        let gap = 1e9 / ratePerSecond
        self.init(start: start, intervalNanos: gap * Double(connections), offsetNanos: gap * Double(index))
    }

    /// When unit `k` is due.
    public func time(_ k: Int) -> Int64 {
        start + Int64((offsetNanos + Double(k) * intervalNanos).rounded())
    }

    /// The first unit due at or after `t` (the number of units due before it).
    public func firstIndex(atOrAfter t: Int64) -> Int {
        let raw = (Double(t - start) - offsetNanos) / intervalNanos
        guard raw > 0 else { return 0 }
        // Rounding in `time` can put a unit a nanosecond either side of the estimate: settle it
        // on the exact times.
        var k = Int(raw.rounded(.down))
        while k > 0 && time(k - 1) >= t { k -= 1 }
        while time(k) < t { k += 1 }
        return k
    }

    /// Units due at or before `now`, from `from` on: how many may start now.
    public func dueCount(from: Int, now: Int64) -> Int {
        max(0, firstIndex(atOrAfter: now + 1) - from)
    }
}
