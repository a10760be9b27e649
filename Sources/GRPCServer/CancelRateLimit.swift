/// Bounds how many calls one connection may cancel (RST_STREAM after sending a complete
/// request): a token bucket of `burst` tokens refilled at `perSecond`. Pure: time comes in as
/// nanoseconds. The "rapid reset" attack (CVE-2023-44487) with complete requests makes the
/// gateway decode, validate and queue a call per stream while the client pays nothing for
/// the reset; nghttp2's own limit only counts resets of streams it still sees as open
/// (HEADERS + RST), so this one covers the calls already handed to the service.
struct CancelRateLimit: Equatable {
    let burst: Int
    let perSecond: Int
    private var tokens: Double
    private var last: UInt64?

    init(burst: Int, perSecond: Int) {
        self.burst = max(1, burst)
        self.perSecond = max(0, perSecond)
        tokens = Double(self.burst)
    }

    /// One more cancelled call at `now`: false once the connection is over its budget.
    mutating func admit(now: UInt64) -> Bool {
        if let last, now > last {
            tokens = min(Double(burst), tokens + Double(now - last) * Double(perSecond) / 1e9)
        }
        last = max(last ?? now, now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
