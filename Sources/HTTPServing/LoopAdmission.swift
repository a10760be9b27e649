import NIOCore

/// Admission control for the calls of one event loop (issue 11, item 5: goodput under
/// overload, fairness between connections).
///
/// Refusing surplus calls does not save a server from a client that retries at once: every
/// refusal costs a decoded request and an answer, and at ten times capacity the refusals eat
/// the CPU the admitted calls need (goodput fell to a sixth). So surplus calls are not refused
/// here, they wait *unread*: a connection whose calls cannot be admitted stops being read
/// (TCP holds the rest of its requests, at no cost to us) until a slot frees. Slots go to the
/// waiting connections in turn, one call each, so a connection with 1,000 streams open and one
/// with a single call get the same share of the next free slots. Calls waiting keep their
/// deadlines (DEADLINE_EXCEEDED, cheaply, without being decoded); memory stays within the
/// request budgets and `SETTINGS_MAX_CONCURRENT_STREAMS`.
///
/// The number of calls in flight (`limit`) adapts to what the task core sustains, by Little's
/// law: while calls wait for a slot, every `window` the limit moves toward
/// `completion rate × targetDelay`, so calls admitted spend about `targetDelay` in the
/// gateway's and the core's queues. Too low a limit shows as calls completing faster than
/// `limit / targetDelay`, which raises it (at most doubling per window); too high, as queueing
/// that the completion rate cannot drain in `targetDelay`, which lowers it.
///
/// Calls answered locally (health, reflection, the API document) do not take a slot. A call
/// that waited `maxWait` is refused when its turn comes (`LoopAdmission.waitedTooLong`).
public struct AdmissionLimiter: Sendable, Equatable {
    public struct Configuration: Sendable, Equatable {
        /// Calls in flight per event loop before any rate was measured.
        public var initialLimit = 1024
        /// Never fewer in flight than this, never more than `maxLimit`.
        public var minLimit = 16
        public var maxLimit = 16_384
        /// The queueing delay the limit aims at (gateway queue plus core), by Little's law.
        public var targetDelay: TimeAmount = .milliseconds(25)
        /// How often the limit is reconsidered.
        public var window: TimeAmount = .milliseconds(100)
        /// A call that waited this long for a slot is refused when its turn comes
        /// (RESOURCE_EXHAUSTED; REST 429 with `Retry-After`) instead of started late: waiting
        /// is bounded even for calls without a deadline (REST), and a client that retries
        /// at once then costs one refusal per second of overload, not one per call.
        public var maxWait: TimeAmount = .seconds(1)

        public init() {}
    }

    public let configuration: Configuration
    public private(set) var limit: Int
    public private(set) var inFlight = 0
    private var windowStart: UInt64
    private var completed = 0
    /// A call had to wait during this window: the limit, not demand, set the pace.
    private var saturated = false

    public init(configuration: Configuration, now: UInt64) {
        self.configuration = configuration
        self.limit = max(configuration.minLimit, min(configuration.maxLimit, configuration.initialLimit))
        self.windowStart = now
    }

    public var hasRoom: Bool { inFlight < limit }

    /// Takes a slot if there is one; otherwise notes that calls are waiting.
    public mutating func tryAcquire() -> Bool {
        guard inFlight < limit else {
            saturated = true
            return false
        }
        inFlight += 1
        return true
    }

    /// A call waits behind others already waiting.
    public mutating func noteWaiting() {
        saturated = true
    }

    /// Takes a slot for a call that waited (the caller checked `hasRoom`).
    public mutating func acquireForWaiter() {
        inFlight += 1
    }

    /// A call left (answered, failed, cancelled): its slot is free.
    public mutating func release(now: UInt64) {
        inFlight -= 1
        completed += 1
        roll(now: now)
    }

    /// Ends the window if it is over: the limit follows the completion rate while saturated.
    public mutating func roll(now: UInt64) {
        let elapsed = now &- windowStart
        let window = UInt64(max(1, configuration.window.nanoseconds))
        guard elapsed >= window else { return }
        if saturated && completed > 0 {
            let rate = Double(completed) / Double(elapsed)  // calls per nanosecond
            let target = rate * Double(configuration.targetDelay.nanoseconds)
            // Half-way to the target, at most doubling or halving per window.
            let next = min(Double(limit) * 2, max(Double(limit) / 2, (Double(limit) + target) / 2))
            limit = max(configuration.minLimit, min(configuration.maxLimit, Int(next.rounded())))
        }
        windowStart = now
        completed = 0
        saturated = false
    }
}

/// Something holding complete calls that wait for a slot: a connection. `admitOne` starts its
/// oldest waiting call on the slot it is given and says whether more wait.
public protocol AdmissionWaiter: AnyObject {
    /// Returns false when it had nothing left to start (the slot goes back).
    func admitOne() -> (started: Bool, more: Bool)
}

/// One event loop's admission: the limiter and the connections waiting, served in turn. Used
/// on that loop only (no lock); `LoopAdmissions` hands each connection its loop's.
public final class LoopAdmission {
    public private(set) var limiter: AdmissionLimiter
    private var ring = CircularBuffer<any AdmissionWaiter>()
    private var granting = false
    private let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop, configuration: AdmissionLimiter.Configuration) {
        self.eventLoop = eventLoop
        limiter = AdmissionLimiter(configuration: configuration, now: eventLoop.now.uptimeNanoseconds)
    }

    /// A slot for a new call, unless calls already wait (they go first) or none is free.
    public func tryAcquire() -> Bool {
        guard ring.isEmpty else {
            limiter.noteWaiting()
            return false
        }
        return limiter.tryAcquire()
    }

    /// `waiter` has calls waiting: it is served when its turn comes. Call once per wait (a
    /// waiter already in the ring must not be added twice).
    public func wait(_ waiter: any AdmissionWaiter) {
        ring.append(waiter)
    }

    /// A call that held a slot is over.
    public func release() {
        limiter.release(now: eventLoop.now.uptimeNanoseconds)
        grant()
    }

    public var waiting: Int { ring.count }

    /// The loop's clock, for waiters to note when their calls began waiting.
    public var now: UInt64 { eventLoop.now.uptimeNanoseconds }

    /// Whether a call that began waiting at `since` waited too long to be started now; the
    /// refusal's message if so.
    public func waitedTooLong(since: UInt64) -> String? {
        let waited = now &- since
        guard waited >= UInt64(limiter.configuration.maxWait.nanoseconds) else { return nil }
        return "the call waited \(waited / 1_000_000) ms for the task core's capacity (at most \(limiter.configuration.maxWait.nanoseconds / 1_000_000) ms); retry shortly"
    }

    /// Free slots go to the waiting connections in turn, one call each.
    private func grant() {
        guard !granting else { return }  // a call started below may end at once and release
        granting = true
        defer { granting = false }
        while limiter.hasRoom, let waiter = ring.popFirst() {
            limiter.acquireForWaiter()
            let (started, more) = waiter.admitOne()
            if !started { limiter.release(now: eventLoop.now.uptimeNanoseconds) }
            if more { ring.append(waiter) }
        }
    }
}

/// Every event loop's `LoopAdmission`, built once for a group and never changed after: each
/// entry is touched only on its own loop, so sharing the table across threads is safe.
public final class LoopAdmissions: @unchecked Sendable {
    private let byLoop: [ObjectIdentifier: LoopAdmission]

    public init(group: any EventLoopGroup, configuration: AdmissionLimiter.Configuration) {
        var byLoop: [ObjectIdentifier: LoopAdmission] = [:]
        for loop in group.makeIterator() {
            byLoop[ObjectIdentifier(loop)] = LoopAdmission(eventLoop: loop, configuration: configuration)
        }
        self.byLoop = byLoop
    }

    /// The admission of `loop` (nil for a loop outside the group: no admission control).
    public func admission(for loop: any EventLoop) -> LoopAdmission? {
        byLoop[ObjectIdentifier(loop)]
    }
}
