import Synchronization

/// Bytes the whole process holds for one purpose (request bytes of messages not yet complete;
/// answers not yet written), shared by every connection's event loop: one atomic counter,
/// touched once per buffered chunk or answer, never per byte.
public final class ProcessByteBudget: Sendable {
    public let maxBytes: Int
    private let used = Atomic<Int>(0)

    public init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Bytes counted now.
    public var buffered: Int { used.load(ordering: .relaxed) }

    /// Counts `n` more bytes unless that would pass the budget.
    public func reserve(_ n: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while true {
            guard current + n <= maxBytes else { return false }
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + n, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Counts `n` bytes whatever the budget says: bytes already held that start counting here
    /// (a message stream's earlier small answers, once a large one joins them in one body).
    public func forceReserve(_ n: Int) {
        used.add(n, ordering: .relaxed)
    }

    public func release(_ n: Int) {
        used.subtract(n, ordering: .relaxed)
    }
}
