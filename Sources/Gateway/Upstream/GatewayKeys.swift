/// The idempotency keys a gateway makes for writes that come without one, so that it can
/// resend them after a broken connection (README, "Exactly once"). Unique across gateway
/// processes and restarts: a random 64-bit prefix drawn once per process, the event loop's
/// index and a counter. One per event loop, used on it only: no lock, no system call per key.
final class GatewayKeys {
    private let prefix: String
    private var counter: UInt64 = 0

    init(prefix: String, loop: Int) {
        self.prefix = prefix + "-" + String(loop, radix: 36) + "-"
    }

    /// `gw-` and 16 hex digits from the system's random source.
    static func processPrefix() -> String {
        var random = SystemRandomNumberGenerator()
        let bits = random.next() as UInt64
        let hex = String(bits, radix: 16)
        return "gw-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    func next() -> String {
        counter &+= 1
        return prefix + String(counter, radix: 36)
    }
}
