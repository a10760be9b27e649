/// Decides when calls waiting for the task core leave as one batch. Pure: no I/O, no clock
/// (`now` comes in as nanoseconds), no timers; it returns actions and its owner
/// (`UpstreamBatcher`) carries them out on its event loop. Tested as a value with a fake clock.
///
/// A batch leaves when
/// - nothing is in flight to the core: a lone call at low load pays no delay;
/// - it reached `maxItems` or `maxBytes`;
/// - its oldest call waited `maxDelay` (the timer);
/// and at most `maxInFlight` batches are in flight at once, so a slow core makes calls queue
/// here, where the queue is bounded (`maxQueued`) and calls that cannot make their deadline
/// are refused at once instead of waiting (load shedding).
///
/// A call whose client went away (RST_STREAM) or whose deadline passed is `cancel`led: if it
/// is still queued it leaves the queue at once and is never sent (a cancelled Start Task must
/// not create a task); once sent, cancelling it changes nothing. Cancelled calls leave a
/// tombstone in the queue array that batches skip, so a cancel costs O(1) whatever the
/// queue's length; tombstones are compacted once they outnumber the live calls. Calls whose
/// deadline passed while queued are found through a heap of deadlines, not a scan.
///
/// The trade-off (as in grpc-swift's FlushCoalescingHandler): a larger `maxDelay` makes larger
/// batches (fewer commits, more throughput) at the cost of latency under moderate load; the
/// "nothing in flight" trigger keeps the low-load latency at one round trip.
struct BatcherStateMachine {
    struct Configuration: Sendable, Equatable {
        var maxItems: Int
        var maxBytes: Int
        var maxDelayNanos: UInt64
        var maxInFlight: Int
        var maxQueued: Int
    }

    struct Item: Equatable {
        var id: UInt64
        var bytes: Int
        /// Nanoseconds on the same clock as `now`; nil: no deadline.
        var deadline: UInt64?
        /// When it joined the queue (set by `enqueue`).
        var arrival: UInt64 = 0
    }

    enum Refusal: Error, Equatable {
        /// The queue is full: RESOURCE_EXHAUSTED (REST: 429 + Retry-After).
        case queueFull
        /// The call's deadline is sooner than a batch round trip is taking now.
        case deadlineTooSoon
    }

    struct Actions: Equatable {
        /// Send these as one batch, in this order.
        var send: [[Item]] = []
        /// These waited past their deadline: answer DEADLINE_EXCEEDED, never send them.
        var expired: [UInt64] = []
        /// Arm (or re-arm) the timer for this instant; nil: leave it as it is.
        var armTimer: UInt64?
        /// Cancel the armed timer: nothing waits any more.
        var cancelTimer = false

        static let none = Actions()
    }

    private(set) var configuration: Configuration
    /// Queued calls in arrival order from `head`, with tombstones (ids no longer in `queued`).
    private var queue: [Item] = []
    private var head = 0
    /// The calls still waiting: id → encoded bytes.
    private var queued: [UInt64: Int] = [:]
    private var queuedBytes = 0
    /// The deadlines of queued calls, soonest first, with entries of calls that left the queue
    /// removed lazily: expired calls are found in O(log n) each, never by rescanning the queue
    /// (which is longest, and events most frequent, under overload).
    private var deadlines = DeadlineHeap()
    private(set) var inFlight = 0
    private var timerArmedFor: UInt64?
    /// Smoothed batch round trip (EWMA, nanoseconds), for refusing calls whose deadline
    /// cannot be met.
    private(set) var roundTripNanos: UInt64 = 0

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    var queuedCount: Int { queued.count }
    /// Entries in the deadline heap, live or not (tests: it stays O(queued)).
    var deadlineEntries: Int { deadlines.count }

    /// A call arrives. Either it is refused at once, or it joins the queue and the actions
    /// say what to do now.
    mutating func enqueue(_ item: Item, now: UInt64) -> Result<Actions, Refusal> {
        if queuedCount >= configuration.maxQueued {
            return .failure(.queueFull)
        }
        if let deadline = item.deadline, roundTripNanos > 0, inFlight >= configuration.maxInFlight || queuedCount > 0,
           deadline < now &+ roundTripNanos {
            // It would wait behind the queue and then take a round trip: it cannot make it.
            return .failure(.deadlineTooSoon)
        }
        var item = item
        item.arrival = now
        queue.append(item)
        queued[item.id] = item.bytes
        queuedBytes += item.bytes
        if let deadline = item.deadline { deadlines.insert(deadline, id: item.id) }
        return .success(next(now: now))
    }

    /// The call's client went away or its deadline passed. Returns nil when it is not queued
    /// (already sent, expired or unknown): nothing changes. Otherwise it left the queue and
    /// will never be sent; the actions move the timer to the next oldest call.
    mutating func cancel(_ id: UInt64, now: UInt64) -> Actions? {
        guard let bytes = queued.removeValue(forKey: id) else { return nil }
        queuedBytes -= bytes
        compactTombstones()
        return next(now: now)
    }

    /// The timer armed by an earlier action fired.
    mutating func timerFired(now: UInt64) -> Actions {
        timerArmedFor = nil
        return next(now: now)
    }

    /// A batch came back (answered or failed) after `roundTrip` nanoseconds.
    mutating func batchCompleted(roundTrip: UInt64, now: UInt64) -> Actions {
        inFlight -= 1
        // EWMA with weight 1/8, as TCP's smoothed RTT (RFC 6298).
        roundTripNanos = roundTripNanos == 0 ? roundTrip : roundTripNanos - roundTripNanos / 8 + roundTrip / 8
        return next(now: now)
    }

    /// A new bound on batches in flight: the core turned out to have no batch endpoint (vendor
    /// mode), so each "batch" is a group of single calls, which a core runs concurrently.
    /// Raising the bound lets waiting calls leave now.
    mutating func setMaxInFlight(_ maxInFlight: Int, now: UInt64) -> Actions {
        configuration.maxInFlight = max(1, maxInFlight)
        return next(now: now)
    }

    /// Keeps `queue[head]` a live call, and the tombstones of cancelled and expired calls
    /// fewer than the live ones (past 1,024), so both cost O(1) amortized.
    private mutating func compactTombstones() {
        skipTombstones()
        let tombstones = queue.count - head - queued.count
        if tombstones > 1024 && tombstones > queued.count {
            queue = queue[head...].filter { queued[$0.id] != nil }
            head = 0
        }
    }

    /// Keeps `queue[head]` a live call (or the end).
    private mutating func skipTombstones() {
        while head < queue.count, queued[queue[head].id] == nil { head += 1 }
    }

    private var oldest: Item? { head < queue.count ? queue[head] : nil }

    private mutating func next(now: UInt64) -> Actions {
        var actions = Actions()
        // Calls whose deadline passed while they waited are answered, not sent.
        // They leave tombstones in `queue`, as cancelled calls do.
        while let id = deadlines.popDue(now: now) {
            guard let bytes = queued.removeValue(forKey: id) else { continue }  // sent or cancelled
            actions.expired.append(id)
            queuedBytes -= bytes
        }
        if !actions.expired.isEmpty { compactTombstones() }
        while let oldest, inFlight < configuration.maxInFlight {
            let full = queuedCount >= configuration.maxItems || queuedBytes >= configuration.maxBytes
            let waited = now >= oldest.arrival &+ configuration.maxDelayNanos
            guard inFlight == 0 || full || waited else { break }
            actions.send.append(takeBatch())
            inFlight += 1
        }
        // The timer serves the oldest waiting call, and only while a batch could leave: when
        // `maxInFlight` batches are out, the next completion decides instead.
        let want: UInt64? = oldest.flatMap { o in
            inFlight < configuration.maxInFlight ? o.arrival &+ configuration.maxDelayNanos : nil
        }
        if want != timerArmedFor {
            if let want {
                actions.armTimer = want
            } else {
                actions.cancelTimer = true
            }
            timerArmedFor = want
        }
        if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        // Entries of sent or cancelled calls stay in the heap until due: drop them once they
        // outnumber the queued calls, so the heap stays O(queued) whatever the deadlines.
        if deadlines.count > 1024 && deadlines.count > 2 * queued.count {
            deadlines.compact { [queued] id in queued[id] != nil }
        }
        return actions
    }

    /// The oldest calls, up to `maxItems` and `maxBytes` (always at least one).
    private mutating func takeBatch() -> [Item] {
        var batch: [Item] = []
        var bytes = 0
        while head < queue.count, batch.count < configuration.maxItems {
            let item = queue[head]
            guard queued[item.id] != nil else {
                head += 1  // cancelled while it waited
                continue
            }
            if !batch.isEmpty && bytes + item.bytes > configuration.maxBytes { break }
            batch.append(item)
            queued[item.id] = nil
            bytes += item.bytes
            head += 1
        }
        queuedBytes -= bytes
        skipTombstones()
        return batch
    }
}

// In an extension, so that the struct keeps its memberwise initialiser (the tests').
extension BatcherStateMachine.Configuration {
    /// The machine's part of the batcher's configuration (whose defaults are stated there).
    init(_ batcher: BatcherConfiguration, maxInFlight: Int) {
        self.init(maxItems: batcher.maxItems, maxBytes: batcher.maxBytes,
                  maxDelayNanos: UInt64(max(0, batcher.maxDelay.nanoseconds)), maxInFlight: maxInFlight,
                  maxQueued: batcher.maxQueued)
    }
}
