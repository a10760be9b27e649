/// Request bytes the gateway holds for messages not yet complete (issue 11, item 1), per
/// connection and per process, so that buffered request bytes have a bound by construction
/// rather than by luck:
///
/// - Per connection: nghttp2 runs with manual window updates. Bytes of a stream are
///   *unconsumed* until the gateway gives their window back (`nghttp2_session_consume`); the
///   peer can never have more than the connection window `W` unconsumed. Partial messages get
///   window back only while the connection's *held* bytes (window given back, message not yet
///   complete) stay within `perConnection − W`; a complete message handed to the service frees
///   its bytes. So held + unconsumed ≤ `perConnection`. A stream that would need more gets
///   RESOURCE_EXHAUSTED (no deadlock: stalling it could starve the other streams).
/// - Per process: every byte buffered is counted in one shared `ProcessByteBudget` before
///   it is buffered; a chunk that would pass `maxBytes` resets its stream instead.
///
/// Pure bookkeeping for one connection, used on its event loop; no I/O.
struct ConnectionRequestBudget {
    /// Bytes this connection may hold at most (held + unconsumed).
    let maxBytes: Int
    /// The connection's receive window, the most a peer can have unconsumed.
    let window: Int
    private(set) var held = 0
    private(set) var unconsumed = 0

    init(maxBytes: Int, window: Int) {
        self.maxBytes = maxBytes
        self.window = min(window, maxBytes)
    }

    var buffered: Int { held + unconsumed }

    /// `n` bytes arrived for a stream that is still collecting its request.
    mutating func received(_ n: Int) { unconsumed += n }

    /// Whether a partial stream may get `n` of its unconsumed bytes' window back now.
    func mayGrant(_ n: Int) -> Bool { held + n <= maxBytes - window }

    /// `n` unconsumed bytes get their window back and stay buffered (a partial message).
    mutating func grant(_ n: Int) {
        unconsumed -= n
        held += n
    }

    /// A stream's buffer is gone (its message handed over, the stream answered or reset):
    /// `held` bytes leave the count, `unconsumed` ones get their window back too.
    mutating func release(held h: Int, unconsumed u: Int) {
        held -= h
        unconsumed -= u
    }
}
