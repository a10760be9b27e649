import Testing
@testable import Gateway

/// Issue 11, item 4: a call reset by its client (or past its deadline) leaves the queue at
/// once and is never sent.
@Suite("Batcher state machine: cancel")
struct BatcherCancelTests {
    typealias SM = BatcherStateMachine
    static let ms: UInt64 = 1_000_000

    static func machine(maxItems: Int = 4, maxInFlight: Int = 1, maxQueued: Int = 100) -> SM {
        SM(configuration: .init(maxItems: maxItems, maxBytes: 1000, maxDelayNanos: 1 * ms,
                                maxInFlight: maxInFlight, maxQueued: maxQueued))
    }

    static func item(_ id: UInt64, deadline: UInt64? = nil) -> SM.Item { SM.Item(id: id, bytes: 10, deadline: deadline) }
    static func sent(_ a: SM.Actions) -> [[UInt64]] { a.send.map { $0.map(\.id) } }

    @Test("A cancelled call still queued is never sent; the others leave in order")
    func cancelledQueuedIsNotSent() throws {
        var sm = Self.machine()
        #expect(Self.sent(try sm.enqueue(Self.item(1), now: 0).get()) == [[1]])
        for id: UInt64 in 2...5 { _ = try sm.enqueue(Self.item(id), now: id) }
        #expect(sm.queuedCount == 4)
        let c3 = sm.cancel(3, now: 10)
        #expect(c3 != nil)
        #expect(sm.queuedCount == 3)
        let done = sm.batchCompleted(roundTrip: 1000, now: 20)
        #expect(Self.sent(done) == [[2, 4, 5]])
        #expect(sm.queuedCount == 0)
    }

    @Test("Cancelling a call already sent, expired or unknown changes nothing")
    func cancelAfterSend() throws {
        var sm = Self.machine()
        _ = try sm.enqueue(Self.item(1), now: 0).get()  // sent at once
        let sent = sm.cancel(1, now: 1), unknown = sm.cancel(99, now: 1)
        #expect(sent == nil && unknown == nil)
        _ = try sm.enqueue(Self.item(2, deadline: 5), now: 2).get()
        let fired = sm.timerFired(now: 10)
        #expect(fired.expired == [2])
        let expired = sm.cancel(2, now: 11)
        #expect(expired == nil)
        #expect(sm.inFlight == 1)
    }

    @Test("Cancelling the oldest call moves the timer to the next; cancelling the last cancels it")
    func timerFollowsTheOldest() throws {
        var sm = Self.machine(maxInFlight: 2)
        _ = try sm.enqueue(Self.item(1), now: 0).get()  // in flight
        let a2 = try sm.enqueue(Self.item(2), now: 100).get()
        #expect(a2.armTimer == 100 + Self.ms)
        _ = try sm.enqueue(Self.item(3), now: 300).get()
        let maybe2 = sm.cancel(2, now: 400)
        let c2 = try #require(maybe2)
        #expect(c2.armTimer == 300 + Self.ms)
        let maybe3 = sm.cancel(3, now: 500)
        let c3 = try #require(maybe3)
        #expect(c3.cancelTimer)
        let fired = sm.timerFired(now: 2 * Self.ms)
        #expect(fired.send.isEmpty)
    }

    @Test("A cancelled call frees its place: the queue bound counts live calls only")
    func cancelFreesQueueRoom() throws {
        var sm = Self.machine(maxQueued: 2)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = try sm.enqueue(Self.item(2), now: 1).get()
        _ = try sm.enqueue(Self.item(3), now: 2).get()
        let full = sm.enqueue(Self.item(4), now: 3)
        #expect(full == .failure(.queueFull))
        _ = sm.cancel(2, now: 4)
        let again = try? sm.enqueue(Self.item(5), now: 5).get()
        #expect(again != nil)
    }

    @Test("Property: with cancels at random, every call is sent or cancelled exactly once, in order")
    func randomCancels() throws {
        var rng = SplitMix(seed: 11)
        var sm = Self.machine(maxItems: 8, maxInFlight: 2, maxQueued: 100_000)
        var sent: [UInt64] = []
        var cancelled: Set<UInt64> = []
        var queued: [UInt64] = []
        var outstanding = 0
        var now: UInt64 = 0
        for id: UInt64 in 1...5000 {
            now += 1000
            let a = try sm.enqueue(Self.item(id), now: now).get()
            sent += a.send.flatMap { $0.map(\.id) }
            outstanding += a.send.count
            queued.append(id)
            if rng.next() % 3 == 0, let victim = queued.randomElement(using: &rng) {
                if let c = sm.cancel(victim, now: now) {
                    #expect(!sent.contains(victim))
                    cancelled.insert(victim)
                    sent += c.send.flatMap { $0.map(\.id) }
                    outstanding += c.send.count
                }
            }
            if rng.next() % 4 == 0, outstanding > 0 {
                outstanding -= 1
                let d = sm.batchCompleted(roundTrip: 3000, now: now)
                sent += d.send.flatMap { $0.map(\.id) }
                outstanding += d.send.count
            }
        }
        while sm.queuedCount > 0 {
            now += 2 * Self.ms
            if outstanding > 0 {
                outstanding -= 1
                let d = sm.batchCompleted(roundTrip: 3000, now: now)
                sent += d.send.flatMap { $0.map(\.id) }
                outstanding += d.send.count
            }
            let f = sm.timerFired(now: now)
            sent += f.send.flatMap { $0.map(\.id) }
            outstanding += f.send.count
        }
        #expect(sent == sent.sorted())
        #expect(Set(sent).count == sent.count)
        #expect(Set(sent).isDisjoint(with: cancelled))
        #expect(Set(sent).union(cancelled) == Set(1...5000))
        #expect(!cancelled.isEmpty)
    }

    @Test("Many cancels in the middle of a long queue stay cheap and keep the order")
    func tombstonesCompact() throws {
        var sm = Self.machine(maxItems: 100, maxInFlight: 1, maxQueued: 20_000)
        _ = try sm.enqueue(Self.item(0), now: 0).get()  // in flight: the rest waits
        for id: UInt64 in 1...10_000 { _ = try sm.enqueue(Self.item(id), now: 1) }
        for id: UInt64 in 2...9_999 {
            let c = sm.cancel(id, now: 2)
            #expect(c != nil)
        }
        #expect(sm.queuedCount == 2)
        let d = sm.batchCompleted(roundTrip: 10, now: 3)
        #expect(Self.sent(d) == [[1, 10_000]])
    }
}

/// A seeded generator (SplitMix64): the same run every time.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
