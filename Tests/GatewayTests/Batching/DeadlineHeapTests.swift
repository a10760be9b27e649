import Testing
@testable import Gateway

@Suite("Deadlines of queued calls")
struct DeadlineHeapTests {
    typealias SM = BatcherStateMachine
    static let ms: UInt64 = 1_000_000

    @Test("The heap gives entries back soonest first, only once due")
    func order() {
        var heap = DeadlineHeap()
        var rng = SystemRandomNumberGenerator()
        var deadlines: [UInt64] = []
        for id in 0..<500 as Range<UInt64> {
            let d = UInt64.random(in: 1...10_000, using: &rng)
            deadlines.append(d)
            heap.insert(d, id: id)
        }
        #expect(heap.popDue(now: 0) == nil)
        var popped: [UInt64] = []
        while let id = heap.popDue(now: 5_000) { popped.append(deadlines[Int(id)]) }
        #expect(popped == deadlines.filter { $0 <= 5_000 }.sorted())
        #expect(heap.count == deadlines.count { $0 > 5_000 })
        #expect(heap.soonest.map { $0 > 5_000 } ?? true)
        heap.compact { deadlines[Int($0)] % 2 == 0 }
        var rest: [UInt64] = []
        while let id = heap.popDue(now: .max) { rest.append(deadlines[Int(id)]) }
        #expect(rest == deadlines.filter { $0 > 5_000 && $0 % 2 == 0 }.sorted())
    }

    @Test("Expired calls in the middle of the queue are answered, and the rest still leave in order")
    func expiryInTheMiddle() throws {
        var sm = SM(configuration: .init(maxItems: 3, maxBytes: 1000, maxDelayNanos: Self.ms, maxInFlight: 1,
                                         maxQueued: 100))
        _ = try sm.enqueue(.init(id: 0, bytes: 1, deadline: nil), now: 0).get()  // in flight
        for id: UInt64 in 1...6 {
            _ = try sm.enqueue(.init(id: id, bytes: 1, deadline: id % 2 == 0 ? 50 : 10 * Self.ms), now: id).get()
        }
        let done = sm.batchCompleted(roundTrip: 10, now: 100)
        #expect(done.expired.sorted() == [2, 4, 6])
        #expect(done.send.map { $0.map(\.id) } == [[1, 3, 5]])
        #expect(sm.queuedCount == 0)
    }

    @Test("Entries of sent calls do not pile up: the heap stays within twice the queue")
    func heapStaysBounded() throws {
        var sm = SM(configuration: .init(maxItems: 100, maxBytes: 1 << 20, maxDelayNanos: Self.ms, maxInFlight: 1,
                                         maxQueued: 10_000))
        var now: UInt64 = 0
        var id: UInt64 = 0
        // 50,000 calls with a far deadline pass through in batches of 100.
        for _ in 0..<500 {
            for _ in 0..<100 {
                id += 1
                now += 1
                _ = try sm.enqueue(.init(id: id, bytes: 1, deadline: 3_600_000 * Self.ms), now: now).get()
            }
            _ = sm.batchCompleted(roundTrip: 10, now: now)
        }
        #expect(sm.deadlineEntries <= max(1024, 2 * sm.queuedCount) + 1)
    }

    @Test("A cancelled call's deadline entry is skipped when it comes due")
    func cancelledThenDue() throws {
        var sm = SM(configuration: .init(maxItems: 10, maxBytes: 1000, maxDelayNanos: Self.ms, maxInFlight: 1,
                                         maxQueued: 100))
        _ = try sm.enqueue(.init(id: 1, bytes: 1, deadline: nil), now: 0).get()
        _ = try sm.enqueue(.init(id: 2, bytes: 1, deadline: 100), now: 1).get()
        _ = try sm.enqueue(.init(id: 3, bytes: 1, deadline: 200), now: 2).get()
        #expect(sm.cancel(2, now: 3) != nil)
        let fired = sm.timerFired(now: 1 + Self.ms)
        #expect(fired.expired == [3], "2 was cancelled, not expired")
        #expect(sm.queuedCount == 0)
    }
}
