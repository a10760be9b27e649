/// The deadlines of queued calls, soonest first: a binary min-heap of `(deadline, id)`.
///
/// Removal is lazy: a call that leaves the queue another way (sent in a batch, cancelled)
/// keeps its entry until it reaches the top, where the owner skips it because its owner no
/// longer holds the id. So enqueue is O(log n), cancel O(1), and finding the expired calls
/// costs O(k log n) for the k entries due at or before `now`, never a scan of the queue (which
/// is longest, and events most frequent, under overload). `compact` bounds the dead entries.
struct DeadlineHeap {
    private struct Entry {
        var deadline: UInt64
        var id: UInt64
    }

    private var entries: [Entry] = []

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    /// The soonest deadline held (live or not): nothing is due before it.
    var soonest: UInt64? { entries.first?.deadline }

    mutating func insert(_ deadline: UInt64, id: UInt64) {
        entries.append(Entry(deadline: deadline, id: id))
        siftUp(entries.count - 1)
    }

    /// Removes and returns the id of an entry due at or before `now`; nil when none is. The
    /// id may name a call that already left the queue: the owner skips those.
    mutating func popDue(now: UInt64) -> UInt64? {
        guard let top = entries.first, top.deadline <= now else { return nil }
        removeTop()
        return top.id
    }

    /// Drops the entries `isLive` rejects, in O(n): call it when they outnumber the live ones,
    /// so the heap stays within twice the queued calls with a deadline.
    mutating func compact(isLive: (UInt64) -> Bool) {
        entries.removeAll { !isLive($0.id) }
        // Floyd's bottom-up heap construction.
        var i = entries.count / 2
        while i > 0 {
            i -= 1
            siftDown(i)
        }
    }

    private mutating func removeTop() {
        let last = entries.removeLast()
        guard !entries.isEmpty else { return }
        entries[0] = last
        siftDown(0)
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        let entry = entries[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry.deadline < entries[parent].deadline else { break }
            entries[child] = entries[parent]
            child = parent
        }
        entries[child] = entry
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        let entry = entries[parent]
        let n = entries.count
        while true {
            var child = 2 * parent + 1
            guard child < n else { break }
            if child + 1 < n && entries[child + 1].deadline < entries[child].deadline { child += 1 }
            guard entries[child].deadline < entry.deadline else { break }
            entries[parent] = entries[child]
            parent = child
        }
        entries[parent] = entry
    }
}
