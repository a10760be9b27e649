import Testing
@testable import Gateway

@Suite("Batcher state machine")
struct BatcherStateMachineTests {
    typealias SM = BatcherStateMachine
    static let ms: UInt64 = 1_000_000

    static func machine(maxItems: Int = 4, maxBytes: Int = 1000, delay: UInt64 = 1 * ms, maxInFlight: Int = 2,
                        maxQueued: Int = 100) -> SM {
        SM(configuration: .init(maxItems: maxItems, maxBytes: maxBytes, maxDelayNanos: delay,
                                maxInFlight: maxInFlight, maxQueued: maxQueued))
    }

    static func item(_ id: UInt64, bytes: Int = 10, deadline: UInt64? = nil) -> SM.Item {
        SM.Item(id: id, bytes: bytes, deadline: deadline)
    }

    static func ids(_ actions: SM.Actions) -> [[UInt64]] { actions.send.map { $0.map(\.id) } }

    @Test("A lone call with nothing in flight leaves at once, with no timer")
    func loneCall() throws {
        var sm = Self.machine()
        let a = try sm.enqueue(Self.item(1), now: 0).get()
        #expect(Self.ids(a) == [[1]])
        #expect(a.armTimer == nil)
        #expect(sm.inFlight == 1)
    }

    @Test("While a batch is in flight, calls wait for the delay, then leave together in order")
    func delayTrigger() throws {
        var sm = Self.machine(maxItems: 10)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        let a2 = try sm.enqueue(Self.item(2), now: 100).get()
        #expect(a2.send.isEmpty)
        #expect(a2.armTimer == 100 + Self.ms)
        let a3 = try sm.enqueue(Self.item(3), now: 200).get()
        #expect(a3.send.isEmpty)
        #expect(a3.armTimer == nil, "the timer serves the oldest call and is already armed")
        let fired = sm.timerFired(now: 100 + Self.ms)
        #expect(Self.ids(fired) == [[2, 3]])
        #expect(sm.inFlight == 2)
        #expect(sm.queuedCount == 0)
    }

    @Test("Raising the in-flight bound (vendor mode found) lets full groups waiting behind it leave at once")
    func raiseInFlight() throws {
        var sm = Self.machine(maxItems: 2, maxInFlight: 1)
        for id: UInt64 in 1...7 { _ = try sm.enqueue(Self.item(id), now: id) }
        #expect(sm.inFlight == 1)
        #expect(sm.queuedCount == 6)
        let raised = sm.setMaxInFlight(3, now: 10)
        #expect(Self.ids(raised) == [[2, 3], [4, 5]])
        #expect(sm.inFlight == 3)
        #expect(sm.queuedCount == 2)
        #expect(sm.configuration.maxInFlight == 3)
    }

    @Test("A full batch (items) leaves before its delay")
    func fullByItems() throws {
        var sm = Self.machine(maxItems: 3)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = try sm.enqueue(Self.item(2), now: 1).get()
        _ = try sm.enqueue(Self.item(3), now: 2).get()
        let a = try sm.enqueue(Self.item(4), now: 3).get()
        #expect(Self.ids(a) == [[2, 3, 4]])
        #expect(a.cancelTimer)
    }

    @Test("A full batch (bytes) leaves before its delay, and never goes over maxBytes")
    func fullByBytes() throws {
        var sm = Self.machine(maxItems: 100, maxBytes: 100)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = try sm.enqueue(Self.item(2, bytes: 60), now: 1).get()
        let a = try sm.enqueue(Self.item(3, bytes: 60), now: 2).get()
        #expect(Self.ids(a) == [[2]], "3 would pass 100 bytes: it waits for the next batch")
        #expect(sm.queuedCount == 1)
    }

    @Test("A call larger than maxBytes still leaves, alone")
    func oversizedItem() throws {
        var sm = Self.machine(maxItems: 100, maxBytes: 100)
        let a = try sm.enqueue(Self.item(1, bytes: 500), now: 0).get()
        #expect(Self.ids(a) == [[1]])
    }

    @Test("At most maxInFlight batches are out; a completion lets the next one go")
    func inFlightLimit() throws {
        var sm = Self.machine(maxItems: 2, maxInFlight: 2)
        _ = try sm.enqueue(Self.item(1), now: 0).get()     // leaves alone
        _ = try sm.enqueue(Self.item(2), now: 1).get()
        _ = try sm.enqueue(Self.item(3), now: 2).get()     // full: 2, 3 leave
        #expect(sm.inFlight == 2)
        _ = try sm.enqueue(Self.item(4), now: 3).get()
        let a = try sm.enqueue(Self.item(5), now: 4).get()
        #expect(a.send.isEmpty, "full, but two batches are out")
        #expect(a.armTimer == nil && !a.cancelTimer, "no timer while blocked on in-flight batches")
        let done = sm.batchCompleted(roundTrip: 500, now: 10 * Self.ms)
        #expect(Self.ids(done) == [[4, 5]])
    }

    @Test("Calls whose deadline passed while waiting are expired, never sent")
    func expiry() throws {
        var sm = Self.machine(maxItems: 10)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = try sm.enqueue(Self.item(2, deadline: 500), now: 10).get()
        _ = try sm.enqueue(Self.item(3, deadline: 10 * Self.ms), now: 20).get()
        let fired = sm.timerFired(now: 10 + Self.ms)
        #expect(fired.expired == [2])
        // 3 is the oldest now and has not waited its delay yet: the timer moves to it.
        #expect(fired.send.isEmpty)
        #expect(fired.armTimer == 20 + Self.ms)
        let next = sm.timerFired(now: 20 + Self.ms)
        #expect(Self.ids(next) == [[3]])
    }

    @Test("A full queue refuses at once, and takes calls again once it drains")
    func queueBound() throws {
        var sm = Self.machine(maxItems: 100, maxInFlight: 1, maxQueued: 3)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        for i: UInt64 in 2...4 { _ = try sm.enqueue(Self.item(i), now: i).get() }
        #expect(sm.enqueue(Self.item(5), now: 5) == .failure(.queueFull))
        let done = sm.batchCompleted(roundTrip: 100, now: 6)
        #expect(Self.ids(done) == [[2, 3, 4]])
        #expect(throws: Never.self) { try sm.enqueue(Self.item(6), now: 7).get() }
    }

    @Test("A call whose deadline is sooner than a round trip is refused at once when it would have to wait")
    func deadlineTooSoon() throws {
        var sm = Self.machine(maxItems: 100, maxInFlight: 1)
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = sm.batchCompleted(roundTrip: 5 * Self.ms, now: 5 * Self.ms)   // learns a 5 ms round trip
        _ = try sm.enqueue(Self.item(2), now: 6 * Self.ms).get()          // in flight now
        #expect(sm.enqueue(Self.item(3, deadline: 7 * Self.ms), now: 6 * Self.ms) == .failure(.deadlineTooSoon))
        #expect(throws: Never.self) { try sm.enqueue(Self.item(4, deadline: 100 * Self.ms), now: 6 * Self.ms).get() }
    }

    @Test("Round-trip estimate is a 1/8 EWMA")
    func ewma() throws {
        var sm = Self.machine()
        _ = try sm.enqueue(Self.item(1), now: 0).get()
        _ = sm.batchCompleted(roundTrip: 800, now: 1)
        #expect(sm.roundTripNanos == 800)
        _ = try sm.enqueue(Self.item(2), now: 2).get()
        _ = sm.batchCompleted(roundTrip: 1600, now: 3)
        #expect(sm.roundTripNanos == 900)
    }

    @Test("Order is kept across many batches under a steady stream")
    func ordering() throws {
        var sm = Self.machine(maxItems: 7, maxInFlight: 3)
        var sent: [UInt64] = []
        var now: UInt64 = 0
        var outstanding = 0
        for id: UInt64 in 1...500 {
            now += 1000
            let a = try sm.enqueue(Self.item(id), now: now).get()
            sent += a.send.flatMap { $0.map(\.id) }
            outstanding += a.send.count
            if id % 5 == 0, outstanding > 0 {
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
        #expect(sent == Array(1...500))
    }
}
