import Testing
@testable import LoadTool

@Suite("Open-loop schedule")
struct OpenLoopScheduleTests {
    @Test("Units are due at fixed intervals from the start, whatever happens to them")
    func fixedIntervals() {
        let s = OpenLoopSchedule(start: 1_000, intervalNanos: 250)
        #expect((0..<5).map(s.time) == [1_000, 1_250, 1_500, 1_750, 2_000])
    }

    @Test("Connections sharing a rate merge into one evenly spaced train", arguments: [1, 2, 3, 7])
    func connectionsInterleave(connections: Int) {
        let rate = 1_000.0  // one unit per millisecond in total
        var times: [Int64] = []
        for i in 0..<connections {
            let s = OpenLoopSchedule(start: 0, ratePerSecond: rate, connection: i, of: connections)
            times += (0..<20).map(s.time)
        }
        times.sort()
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps.allSatisfy { abs($0 - 1_000_000) <= 1 })
        #expect(times.first == 0)
    }

    @Test("firstIndex finds the first unit due at or after a time")
    func firstIndex() {
        let s = OpenLoopSchedule(start: 100, intervalNanos: 10, offsetNanos: 5)  // 105, 115, 125, …
        #expect(s.firstIndex(atOrAfter: 0) == 0)
        #expect(s.firstIndex(atOrAfter: 105) == 0)
        #expect(s.firstIndex(atOrAfter: 106) == 1)
        #expect(s.firstIndex(atOrAfter: 115) == 1)
        #expect(s.firstIndex(atOrAfter: 1_105) == 100)
        #expect(s.firstIndex(atOrAfter: 1_106) == 101)
    }

    @Test("firstIndex agrees with time() for intervals that do not divide evenly")
    func firstIndexWithFractions() {
        let s = OpenLoopSchedule(start: 7, ratePerSecond: 3_000, connection: 1, of: 3)  // 333,333.33… ns gaps
        for k in 0..<2_000 {
            let t = s.time(k)
            #expect(s.firstIndex(atOrAfter: t) == k)
            #expect(s.firstIndex(atOrAfter: t + 1) == k + 1)
        }
    }

    @Test("dueCount counts what may start now, from the next unit on")
    func dueCount() {
        let s = OpenLoopSchedule(start: 0, intervalNanos: 100)  // 0, 100, 200, …
        #expect(s.dueCount(from: 0, now: 0) == 1)
        #expect(s.dueCount(from: 0, now: 99) == 1)
        #expect(s.dueCount(from: 0, now: 100) == 2)
        #expect(s.dueCount(from: 2, now: 450) == 3)  // 200, 300, 400
        #expect(s.dueCount(from: 9, now: 450) == 0)
    }

    @Test("A duration holds rate × duration units")
    func unitsInADuration() {
        let s = OpenLoopSchedule(start: 0, ratePerSecond: 500, connection: 0, of: 1)
        #expect(s.firstIndex(atOrAfter: 2_000_000_000) == 1_000)
    }
}
