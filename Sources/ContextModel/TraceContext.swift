/// A W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/ §3.2):
/// `version "-" trace-id "-" parent-id "-" trace-flags`, lower-case hex, e.g.
/// `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`.
///
/// Parsing is strict, as §3.2 asks of a receiver: a value that is not exactly this shape is
/// ignored (the call then starts a trace of its own), never an error for the call. Version
/// `ff` is invalid; a higher version than `00` is read by its first 55 characters if the next
/// one is `-` (§3.2.4: "parse the fields of version 00 and ignore the rest"), and sent on as
/// version `00`.
public struct TraceParent: Sendable, Hashable {
    /// The 16-byte trace id, big-endian halves; never all zero.
    public var traceIDHigh: UInt64
    public var traceIDLow: UInt64
    /// The 8-byte id of the caller's span; never zero.
    public var parentID: UInt64
    /// Bit 0: sampled (§3.2.2.5); other bits are carried as received.
    public var flags: UInt8

    public init?(traceIDHigh: UInt64, traceIDLow: UInt64, parentID: UInt64, flags: UInt8) {
        guard traceIDHigh | traceIDLow != 0, parentID != 0 else { return nil }  // §3.2.2.3, §3.2.2.4
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.parentID = parentID
        self.flags = flags
    }

    /// The header's value, or nil when it is not a valid `traceparent`.
    public init?(_ value: some Collection<UInt8>) {
        let length = value.count
        guard length >= 55 else { return nil }
        var bytes = value.makeIterator()
        func hex(_ digits: Int) -> UInt64? {
            var v: UInt64 = 0
            for _ in 0..<digits {
                guard let c = bytes.next() else { return nil }
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c &- UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c &- UInt8(ascii: "a") &+ 10
                default: return nil  // upper case too: §3.2.2 "lowercase hex"
                }
                v = v << 4 | UInt64(d)
            }
            return v
        }
        func dash() -> Bool { bytes.next() == UInt8(ascii: "-") }
        guard let version = hex(2), version != 0xff, dash(),
              let high = hex(16), let low = hex(16), dash(),
              let parent = hex(16), dash(),
              let flags = hex(2) else { return nil }
        if version == 0 {
            guard length == 55 else { return nil }
        } else if length > 55 {
            guard bytes.next() == UInt8(ascii: "-") else { return nil }
        }
        self.init(traceIDHigh: high, traceIDLow: low, parentID: parent, flags: UInt8(flags))
    }

    public init?(_ value: String) {
        self.init(value.utf8)
    }

    /// 32 lower-case hex digits.
    public var traceIDHex: String { Self.hex(traceIDHigh) + Self.hex(traceIDLow) }
    /// 16 lower-case hex digits.
    public var parentIDHex: String { Self.hex(parentID) }

    /// The header value, version `00`: one allocation (it goes on every single call upstream).
    public var header: String {
        String(unsafeUninitializedCapacity: 55) { out in
            out[0] = UInt8(ascii: "0")
            out[1] = UInt8(ascii: "0")
            out[2] = UInt8(ascii: "-")
            Self.writeHex(traceIDHigh, digits: 16, into: out, at: 3)
            Self.writeHex(traceIDLow, digits: 16, into: out, at: 19)
            out[35] = UInt8(ascii: "-")
            Self.writeHex(parentID, digits: 16, into: out, at: 36)
            out[52] = UInt8(ascii: "-")
            Self.writeHex(UInt64(flags), digits: 2, into: out, at: 53)
            return 55
        }
    }

    private static func writeHex(_ value: UInt64, digits: Int, into out: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        for i in 0..<digits {
            let nibble = UInt8((value >> UInt64(4 * (digits - 1 - i))) & 0xf)
            out[start + i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }

    /// `digits` lower-case hex digits of `value`, zero-padded.
    public static func hex(_ value: UInt64, digits: Int = 16) -> String {
        String(unsafeUninitializedCapacity: digits) { out in
            writeHex(value, digits: digits, into: out, at: 0)
            return digits
        }
    }
}

/// One call's place in a trace, in one process: the trace it belongs to, the span this
/// process gives it, and the caller's span (from the `traceparent` received, if any). The
/// next hop gets `outgoing`: the same trace with this span as its parent, so the span ids in
/// two processes' log lines chain up.
public struct TraceContext: Sendable, Hashable {
    public var traceIDHigh: UInt64
    public var traceIDLow: UInt64
    /// This process's span for the call: never zero. Logged as `request_id` and `span_id`.
    public var spanID: UInt64
    /// The caller's span, 0 when the call came without a valid `traceparent`.
    public var parentSpanID: UInt64
    public var flags: UInt8

    /// Continues the caller's trace, or starts one (§3.2: an invalid or absent
    /// `traceparent` starts a new trace; its flags are 00, not sampled).
    public init(continuing incoming: TraceParent?, using random: inout some RandomNumberGenerator) {
        var span = random.next() as UInt64
        if span == 0 { span = 1 }
        spanID = span
        if let incoming {
            traceIDHigh = incoming.traceIDHigh
            traceIDLow = incoming.traceIDLow
            parentSpanID = incoming.parentID
            flags = incoming.flags
        } else {
            traceIDHigh = random.next()
            traceIDLow = random.next()
            if traceIDHigh | traceIDLow == 0 { traceIDLow = 1 }
            parentSpanID = 0
            flags = 0
        }
    }

    /// What the next hop receives: this trace, this span as its parent.
    public var outgoing: TraceParent {
        // Both ids are non-zero by construction.
        TraceParent(traceIDHigh: traceIDHigh, traceIDLow: traceIDLow, parentID: spanID, flags: flags)!
    }

    public var traceIDHex: String { TraceParent.hex(traceIDHigh) + TraceParent.hex(traceIDLow) }
    public var spanIDHex: String { TraceParent.hex(spanID) }
    /// Empty when the trace started here.
    public var parentSpanIDHex: String { parentSpanID == 0 ? "" : TraceParent.hex(parentSpanID) }
}

/// A fast generator for span and trace ids (SplitMix64, seeded once from the system's
/// generator): ids must be unique, not secret, and one `getrandom` call per span would cost
/// more than the rest of a call's bookkeeping. Not Sendable on purpose: one per event loop or
/// connection.
public struct TraceIDGenerator: RandomNumberGenerator {
    private var state: UInt64

    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
