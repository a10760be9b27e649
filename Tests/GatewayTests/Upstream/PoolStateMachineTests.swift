import Testing
@testable import Gateway

@Suite("Pool state machine")
struct PoolStateMachineTests {
    /// SplitMix64 (Steele, Lea, Flood 2014): a seeded generator, so jitter and the random event
    /// sequences are the same on every run.
    struct SeededRNG: RandomNumberGenerator {
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

    typealias SM = PoolStateMachine<SeededRNG>
    static let ms: UInt64 = 1_000_000

    static func machine(cores: Int = 1, maxConnections: Int = 4, depth: Int = 2, base: UInt64 = 50 * ms,
                        max: UInt64 = 5000 * ms, ejectAfter: Int = 3, maxWaiting: Int = 100, seed: UInt64 = 1) -> SM {
        SM(coreCount: cores,
           configuration: .init(maxConnectionsPerCore: maxConnections, pipelineDepth: depth, backoffBaseNanos: base,
                                backoffMaxNanos: max, ejectAfterFailures: ejectAfter, maxWaiting: maxWaiting),
           generator: SeededRNG(seed: seed))
    }

    /// Plays the owner: carries out actions and checks, on each one, that the machine keeps its
    /// promises (a call is used or refused only while it waits, only on an established
    /// connection of a core that is not ejected; a closed connection had nothing in flight).
    struct Driver {
        var sm: SM
        var now: UInt64 = 0
        var coreOf: [SM.ConnectionID: Int] = [:]
        var connecting: [SM.ConnectionID] = []
        var established: [SM.ConnectionID] = []
        var inFlight: [SM.ConnectionID: Int] = [:]
        var waiting: Set<SM.RequestID> = []
        /// Every id `request` handed out (the calls that had to wait).
        var handedOut: Set<SM.RequestID> = []
        var used: [SM.RequestID: SM.ConnectionID] = [:]
        var refused: [SM.RequestID: SM.Failure] = [:]
        var cancelled: Set<SM.RequestID> = []
        var lost = 0
        var timer: UInt64?
        var last = SM.Actions()

        init(_ sm: SM) { self.sm = sm }

        mutating func apply(_ a: SM.Actions, sourceLocation: SourceLocation = #_sourceLocation) {
            last = a
            for c in a.connect {
                #expect(coreOf[c.connection] == nil, "a fresh id", sourceLocation: sourceLocation)
                coreOf[c.connection] = c.core
                connecting.append(c.connection)
            }
            for u in a.use {
                #expect(waiting.remove(u.request) != nil, "only a waiting call is sent", sourceLocation: sourceLocation)
                send(on: u.connection, sourceLocation: sourceLocation)
                used[u.request] = u.connection
            }
            for r in a.refuse {
                #expect(waiting.remove(r.request) != nil, "only a waiting call is refused", sourceLocation: sourceLocation)
                refused[r.request] = r.failure
            }
            for c in a.close {
                #expect(inFlight[c, default: 0] == 0, "nothing in flight on a connection to close", sourceLocation: sourceLocation)
                established.removeAll { $0 == c }
                connecting.removeAll { $0 == c }
                inFlight[c] = nil
            }
            if let t = a.scheduleTimer { timer = t }
            if a.cancelTimer { timer = nil }
        }

        mutating func send(on c: SM.ConnectionID, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(established.contains(c), "sent on an established connection", sourceLocation: sourceLocation)
            let core = coreOf[c] ?? -1
            switch sm.state(ofCore: core) {
            case .ready, .backingOff: break
            case .ejected, .probing: Issue.record("a call was sent to ejected core \(core)", sourceLocation: sourceLocation)
            }
            #expect(!sm.isDraining(c), sourceLocation: sourceLocation)
            inFlight[c, default: 0] += 1
        }

        @discardableResult
        mutating func request(sourceLocation: SourceLocation = #_sourceLocation) -> SM.RequestAction {
            let admission = sm.request(now: now)
            apply(admission.actions, sourceLocation: sourceLocation)
            switch admission.request {
            case .use(let c): send(on: c, sourceLocation: sourceLocation)
            case .wait(let id):
                #expect(!handedOut.contains(id), sourceLocation: sourceLocation)
                handedOut.insert(id)
                waiting.insert(id)
            case .refuse: break
            }
            return admission.request
        }

        mutating func connected(_ c: SM.ConnectionID, sourceLocation: SourceLocation = #_sourceLocation) {
            connecting.removeAll { $0 == c }
            established.append(c)
            apply(sm.connected(c, now: now), sourceLocation: sourceLocation)
        }

        mutating func connectFailed(_ c: SM.ConnectionID, sourceLocation: SourceLocation = #_sourceLocation) {
            connecting.removeAll { $0 == c }
            apply(sm.connectFailed(c, now: now), sourceLocation: sourceLocation)
        }

        mutating func closed(_ c: SM.ConnectionID, withError: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
            let a = sm.connectionClosed(c, withError: withError, now: now)
            #expect(a.lostInFlight == (established.contains(c) ? inFlight[c, default: 0] : 0), sourceLocation: sourceLocation)
            lost += a.lostInFlight
            established.removeAll { $0 == c }
            connecting.removeAll { $0 == c }
            inFlight[c] = nil
            apply(a, sourceLocation: sourceLocation)
        }

        mutating func finished(_ c: SM.ConnectionID, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(inFlight[c, default: 0] > 0, sourceLocation: sourceLocation)
            inFlight[c, default: 0] -= 1
            apply(sm.requestFinished(c), sourceLocation: sourceLocation)
        }

        mutating func fireTimer(sourceLocation: SourceLocation = #_sourceLocation) {
            guard let t = timer else {
                Issue.record("no timer armed", sourceLocation: sourceLocation)
                return
            }
            now = max(now, t)
            timer = nil
            apply(sm.timerFired(now: now), sourceLocation: sourceLocation)
        }

        mutating func cancel(_ id: SM.RequestID) {
            let wasWaiting = sm.cancel(id)
            #expect(wasWaiting == waiting.contains(id))
            if waiting.remove(id) != nil { cancelled.insert(id) }
        }

        /// The machine's own view agrees with the owner's, and nobody waits without a
        /// connection on its way.
        func checkInvariants(sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(sm.waitingCount == waiting.count, sourceLocation: sourceLocation)
            for c in established {
                #expect(sm.outstanding(on: c) == inFlight[c, default: 0], "\(c)", sourceLocation: sourceLocation)
            }
            var comingUp = false
            for core in 0..<sm.coreCount {
                let usable = switch sm.state(ofCore: core) {
                case .ready, .backingOff: true
                case .ejected, .probing: false
                }
                let serving = sm.establishedConnections(ofCore: core).filter { !sm.isDraining($0) }
                let opening = sm.connectingConnections(ofCore: core)
                #expect(serving.count + opening.count <= sm.configuration.maxConnectionsPerCore, sourceLocation: sourceLocation)
                if usable && !opening.isEmpty { comingUp = true }
            }
            if sm.waitingCount > 0 {
                #expect(comingUp, "calls wait with no connection being opened for them", sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: Triggers and ordering

    @Test("The first call opens a connection and waits; connected sends it")
    func firstRequest() throws {
        var d = Driver(Self.machine())
        guard case .wait(let r0) = d.request() else { Issue.record("should wait"); return }
        #expect(d.last.connect.count == 1)
        let c0 = try #require(d.last.connect.first)
        #expect(c0.core == 0 && !c0.isProbe)
        #expect(d.sm.waitingRequests == [r0])
        d.connected(c0.connection)
        #expect(d.last.use == [.init(request: r0, connection: c0.connection)])
        #expect(d.sm.outstanding(on: c0.connection) == 1)
        #expect(d.sm.waitingCount == 0)
        // The next call goes straight on the connection.
        #expect(d.request() == .use(c0.connection))
        #expect(d.sm.outstanding(on: c0.connection) == 2)
    }

    @Test("Calls arriving while a connection opens wait for it up to pipelineDepth; one more opens another")
    func waitersShareConnectingSlots() throws {
        var d = Driver(Self.machine(depth: 2))
        guard case .wait(let r0) = d.request(), case .wait(let r1) = d.request() else { Issue.record(); return }
        #expect(d.connecting.count == 1, "the second call fits the first connection's pipeline")
        guard case .wait(let r2) = d.request() else { Issue.record(); return }
        #expect(d.connecting.count == 2)
        let (c0, c1) = (d.connecting[0], d.connecting[1])
        d.connected(c0)
        #expect(d.last.use.map(\.request) == [r0, r1], "oldest first, up to pipelineDepth")
        #expect(d.sm.waitingRequests == [r2], "r2 waits for c1 rather than going deeper on c0")
        d.connected(c1)
        #expect(d.last.use == [.init(request: r2, connection: c1)])
        d.checkInvariants()
    }

    @Test("A call goes on the connection with the fewest outstanding across cores")
    func leastOutstandingAcrossCores() throws {
        var d = Driver(Self.machine(cores: 2, maxConnections: 1, depth: 2))
        d.request(); d.request(); d.request()
        #expect(d.connecting.count == 2)
        let (c0, c1) = (d.connecting[0], d.connecting[1])
        #expect(d.coreOf[c0] == 0 && d.coreOf[c1] == 1, "the second connection goes to the idle core")
        d.connected(c0)
        d.connected(c1)
        #expect(d.sm.outstanding(on: c0) == 2 && d.sm.outstanding(on: c1) == 1)
        #expect(d.request() == .use(c1))
        d.finished(c0)
        d.finished(c0)
        #expect(d.request() == .use(c0))
        #expect(d.request() == .use(c0), "1 on c0 is fewer than 2 on c1")
        // Both at depth, no connection can be opened (one per core): pipeline deeper, least
        // outstanding first, the older connection on a tie.
        #expect(d.request() == .use(c0))
        #expect(d.request() == .use(c1))
        #expect(d.sm.outstanding(on: c0) == 3 && d.sm.outstanding(on: c1) == 3)
        d.checkInvariants()
    }

    @Test("Connections open at pipelineDepth up to the max per core, then calls pipeline deeper")
    func openUpToMaxThenDeeper() throws {
        var d = Driver(Self.machine(maxConnections: 3, depth: 2))
        var conns: [SM.ConnectionID] = []
        for _ in 0..<3 {
            guard case .wait = d.request() else { Issue.record("waits for a new connection"); return }
            #expect(d.last.connect.count == 1)
            let c = try #require(d.last.connect.first).connection
            conns.append(c)
            d.connected(c)
            #expect(d.request() == .use(c), "a second call fills the new connection to pipelineDepth")
        }
        #expect(conns.map { d.sm.outstanding(on: $0) } == [2, 2, 2])
        // At the max: no more connections; the least busy (oldest on ties) takes it deeper.
        #expect(d.request() == .use(conns[0]))
        #expect(d.last.connect.isEmpty)
        #expect(d.request() == .use(conns[1]))
        #expect(d.sm.connectingConnections(ofCore: 0).isEmpty)
        #expect(d.sm.establishedConnections(ofCore: 0).count == 3)
        // A finished call makes room below pipelineDepth again.
        d.finished(conns[2])
        d.finished(conns[2])
        #expect(d.request() == .use(conns[2]))
        d.checkInvariants()
    }

    @Test("A finished call lets a waiting one go on its connection")
    func finishedDispatchesWaiter() throws {
        var d = Driver(Self.machine(maxConnections: 2, depth: 1))
        d.request()
        let c0 = d.connecting[0]
        d.connected(c0)
        guard case .wait(let r1) = d.request() else { Issue.record(); return }
        let c1 = try #require(d.last.connect.first).connection
        d.finished(c0)
        #expect(d.last.use == [.init(request: r1, connection: c0)], "the first connection free takes it")
        d.connected(c1)
        #expect(d.last.use.isEmpty)
        #expect(d.sm.outstanding(on: c1) == 0)
        d.checkInvariants()
    }

    // MARK: Backoff

    @Test("Backoff caps double from the base and stop at the max",
          arguments: [(0, 0), (1, 50), (2, 100), (3, 200), (4, 400), (5, 800), (6, 1600), (7, 3200), (8, 5000),
                      (9, 5000), (64, 5000), (1000, 5000)] as [(Int, UInt64)])
    func backoffCaps(failures: Int, capMs: UInt64) {
        #expect(SM.backoffCap(failures: failures, base: 50 * Self.ms, max: 5000 * Self.ms) == capMs * Self.ms)
    }

    @Test("Backoff caps never overflow")
    func backoffCapOverflow() {
        #expect(SM.backoffCap(failures: 3, base: UInt64.max / 2, max: UInt64.max) == UInt64.max)
        #expect(SM.backoffCap(failures: 2, base: UInt64.max / 2, max: UInt64.max) == UInt64.max - 1)
        #expect(SM.backoffCap(failures: 65, base: 1, max: UInt64.max) == UInt64.max)
    }

    /// One failed connect on a core that is not ejected: returns the backoff it drew.
    static func failOnce(_ d: inout Driver) throws -> UInt64 {
        if let t = d.timer { d.now = max(d.now, t); d.fireTimer() }
        guard case .wait(let r) = d.request() else {
            Issue.record("should wait for a connect")
            return 0
        }
        let c = try #require(d.last.connect.first).connection
        d.connectFailed(c)
        #expect(d.refused[r] == .unavailable(.noConnection), "no other core: the waiting call fails at once")
        guard case .backingOff(let until) = d.sm.state(ofCore: 0) else {
            Issue.record("backing off")
            return 0
        }
        #expect(d.timer == until)
        return until - d.now
    }

    @Test("Full jitter: each delay lies in [0, cap] for its failure count, spread across the range")
    func jitterWithinCap() throws {
        var draws: [[UInt64]] = Array(repeating: [], count: 8)
        for seed: UInt64 in 0..<200 {
            var d = Driver(Self.machine(base: 50 * Self.ms, max: 1000 * Self.ms, ejectAfter: 100, seed: seed))
            for n in 1...8 {
                let delay = try Self.failOnce(&d)
                let cap = d.sm.backoffCap(failures: n)
                #expect(delay <= cap, "failure \(n): \(delay) > \(cap)")
                #expect(d.sm.failures(ofCore: 0) == n)
                draws[n - 1].append(delay)
            }
        }
        for n in 1...8 {
            let cap = SM.backoffCap(failures: n, base: 50 * Self.ms, max: 1000 * Self.ms)
            #expect(draws[n - 1].min()! < cap / 4 && draws[n - 1].max()! > cap / 4 * 3, "failure \(n) spreads over [0, \(cap)]")
        }
        #expect(SM.backoffCap(failures: 8, base: 50 * Self.ms, max: 1000 * Self.ms) == 1000 * Self.ms)
    }

    @Test("The delay is drawn from the generator it was given: same seed, same delays")
    func jitterDeterministic() throws {
        var twin = SeededRNG(seed: 42)
        var d = Driver(Self.machine(ejectAfter: 100, seed: 42))
        for n in 1...10 {
            let expected = UInt64.random(in: 0...d.sm.backoffCap(failures: n), using: &twin)
            #expect(try Self.failOnce(&d) == expected)
        }
    }

    @Test("A core backing off keeps serving on its live connections but opens none until its backoff ends")
    func backingOffCoreKeepsLiveConnections() throws {
        var d = Driver(Self.machine(maxConnections: 4, depth: 1))
        d.request()
        let c0 = d.connecting[0]
        d.connected(c0)
        d.request()                       // opens c1
        let c1 = d.connecting[0]
        d.connectFailed(c1)
        #expect(d.sm.failures(ofCore: 0) == 1)
        #expect(d.last.use.count == 1, "the waiting call goes deeper on c0 rather than failing")
        #expect(d.sm.outstanding(on: c0) == 2)
        #expect(d.request() == .use(c0), "no connect during the backoff")
        #expect(d.last.connect.isEmpty)
        d.fireTimer()
        #expect(d.sm.state(ofCore: 0) == .ready)
        guard case .wait = d.request() else { Issue.record("opens again after the backoff"); return }
        d.connected(d.connecting[0])
        #expect(d.sm.failures(ofCore: 0) == 0, "a connect that succeeds resets the count")
        d.checkInvariants()
    }

    // MARK: Ejection and probes

    /// Two cores; core 0 fails `ejectAfter` connects in a row. Returns the driver with core 0 ejected.
    static func ejectCore0(ejectAfter: Int = 3, seed: UInt64 = 7) throws -> Driver {
        var d = Driver(Self.machine(cores: 2, maxConnections: 4, depth: 1, ejectAfter: ejectAfter, seed: seed))
        for n in 1...ejectAfter {
            if n > 1 { d.fireTimer() }  // core 0's backoff ends
            // Find a call whose connection goes to core 0: core 1 is kept busy beyond depth.
            var c: SM.ConnectionID?
            for _ in 0..<20 where c == nil {
                d.request()
                c = d.last.connect.first { $0.core == 0 }?.connection
                if let up = d.connecting.first(where: { d.coreOf[$0] == 1 }) { d.connected(up) }
            }
            let failing = try #require(c)
            d.connectFailed(failing)
            #expect(d.sm.failures(ofCore: 0) == n)
            d.checkInvariants()
        }
        return d
    }

    @Test("After N failures in a row a core is ejected and gets no calls")
    func ejection() throws {
        var d = try Self.ejectCore0()
        guard case .ejected(let probeAt) = d.sm.state(ofCore: 0) else {
            Issue.record("core 0 should be ejected, is \(d.sm.state(ofCore: 0))")
            return
        }
        #expect(probeAt >= d.now && probeAt - d.now <= d.sm.backoffCap(failures: 3))
        #expect(d.timer == probeAt)
        for up in d.connecting where d.coreOf[up] == 1 { d.connected(up) }
        for _ in 0..<30 {
            switch d.request() {
            case .use(let c): #expect(d.coreOf[c] == 1)
            case .wait: #expect(d.last.connect.allSatisfy { $0.core == 1 })
            case .refuse(let f): Issue.record("refused \(f) with core 1 up")
            }
            for up in d.connecting where d.coreOf[up] == 1 { d.connected(up) }
        }
        #expect(d.sm.connectingConnections(ofCore: 0).isEmpty, "no connection to an ejected core before its probe")
        d.checkInvariants()
    }

    @Test("keepEveryCoreConnected: a core back from its backoff gets a connection at once and takes its share")
    func coreBackIsConnectedAtOnce() throws {
        var sm = Self.machine(cores: 2, depth: 1)
        sm = SM(coreCount: 2, configuration: {
            var c = SM.Configuration.defaults
            c.pipelineDepth = 1
            c.keepEveryCoreConnected = true
            return c
        }(), generator: SeededRNG(seed: 1))
        var d = Driver(sm)
        // First use: both cores get a connection, the call waits for the first to connect.
        guard case .wait = d.request() else { Issue.record(); return }
        #expect(Set(d.last.connect.map(\.core)) == [0, 1])
        for c in d.connecting { d.connected(c) }
        let toCore0 = try #require(d.established.first { d.coreOf[$0] == 0 })
        // Core 0 drops with an error: it backs off and, for now, core 1 carries everything.
        d.closed(toCore0, withError: true)
        guard case .backingOff(let until) = d.sm.state(ofCore: 0) else { Issue.record("\(d.sm.state(ofCore: 0))"); return }
        #expect(d.sm.connectingConnections(ofCore: 0).isEmpty, "no connect during the backoff")
        // The backoff ends: a connection to core 0 is opened with no call asking for one.
        d.now = until
        d.fireTimer()
        let back = try #require(d.last.connect.first)
        #expect(back.core == 0 && !back.isProbe)
        d.connected(back.connection)
        // Least outstanding sends the next call to core 0 (core 1's connection is busy).
        if case .use(let busy) = d.request() { #expect(d.coreOf[busy] == 0 || d.coreOf[busy] == 1) }
        if case .use(let next) = d.request() { #expect(d.coreOf[next] != nil) }
        #expect(d.sm.outstanding(on: back.connection) == 1, "core 0 took a call again")
        d.checkInvariants()
    }

    @Test("A call waiting on a failed connect moves to another core")
    func waiterMovesToOtherCore() throws {
        var d = Driver(Self.machine(cores: 2, depth: 2))
        guard case .wait(let r0) = d.request() else { Issue.record(); return }
        let c0 = d.connecting[0]
        #expect(d.coreOf[c0] == 0)
        d.connectFailed(c0)
        #expect(d.refused.isEmpty)
        let c1 = try #require(d.last.connect.first)
        #expect(c1.core == 1)
        #expect(d.sm.waitingRequests == [r0])
        d.connected(c1.connection)
        #expect(d.used[r0] == c1.connection)
        d.checkInvariants()
    }

    @Test("The ejected core gets exactly one probe after its backoff; success un-ejects it and resets the count")
    func probeSuccess() throws {
        var d = try Self.ejectCore0()
        guard case .ejected(let probeAt) = d.sm.state(ofCore: 0) else { Issue.record(); return }
        if probeAt > d.now {
            // A timer that fires early opens no probe and is re-armed.
            d.now = probeAt - 1
            d.apply(d.sm.timerFired(now: d.now))
            #expect(d.last.connect.isEmpty)
            #expect(d.timer == probeAt)
        }
        d.fireTimer()
        #expect(d.last.connect.count == 1)
        let probe = try #require(d.last.connect.first)
        #expect(probe.core == 0 && probe.isProbe)
        #expect(d.sm.state(ofCore: 0) == .probing(probe.connection))
        // While it probes, calls still go to core 1 only, and no second probe is opened.
        for _ in 0..<5 {
            d.request()
            #expect(d.last.connect.allSatisfy { $0.core == 1 })
        }
        for up in d.connecting where d.coreOf[up] == 1 { d.connected(up) }
        #expect(d.sm.waitingCount == 0)
        d.now += 1
        d.connected(probe.connection)
        #expect(d.sm.state(ofCore: 0) == .ready)
        #expect(d.sm.failures(ofCore: 0) == 0)
        #expect(d.timer == nil, "nothing is due any more")
        // Core 0 takes calls again: its probe connection is the least busy.
        #expect(d.request() == .use(probe.connection))
        d.checkInvariants()
    }

    @Test("A probe that fails ejects the core again with the next, doubled, cap")
    func probeFailure() throws {
        var d = try Self.ejectCore0()
        for failures in 4...7 {
            d.fireTimer()
            let probe = try #require(d.last.connect.first { $0.isProbe })
            #expect(d.sm.state(ofCore: 0) == .probing(probe.connection))
            d.connectFailed(probe.connection)
            #expect(d.sm.failures(ofCore: 0) == failures)
            guard case .ejected(let probeAt) = d.sm.state(ofCore: 0) else { Issue.record(); return }
            #expect(probeAt - d.now <= d.sm.backoffCap(failures: failures))
            #expect(d.sm.backoffCap(failures: failures) == 2 * d.sm.backoffCap(failures: failures - 1))
            #expect(d.timer == probeAt)
        }
    }

    @Test("Ejection closes the core's idle connections and drains its busy ones")
    func ejectionClosesConnections() throws {
        // One core, so the failures come from closes with an error on live connections.
        var d = Driver(Self.machine(maxConnections: 4, depth: 1, ejectAfter: 2))
        for _ in 0..<3 {
            d.request()
            d.connected(d.last.connect[0].connection)
        }
        let (a, b, c) = (d.established[0], d.established[1], d.established[2])
        d.finished(b)                     // b idle; a and c busy
        d.closed(a, withError: true)      // failure 1: a's call is lost, reported
        #expect(d.lost == 1)
        d.closed(c, withError: true)      // failure 2: ejected
        guard case .ejected = d.sm.state(ofCore: 0) else { Issue.record(); return }
        #expect(d.last.close == [b], "the idle connection is closed")
        #expect(d.sm.establishedConnections(ofCore: 0).isEmpty)
        d.checkInvariants()
    }

    @Test("A busy connection of an ejected core takes no calls and closes when its last call finishes")
    func drainingConnection() throws {
        var d = Driver(Self.machine(maxConnections: 4, depth: 1, ejectAfter: 1))
        d.request()
        let x = d.last.connect[0].connection
        d.connected(x)
        d.request()                                  // x is at depth: opens y
        let y = d.last.connect[0].connection
        d.connectFailed(y)                           // ejected at once
        guard case .ejected = d.sm.state(ofCore: 0) else { Issue.record(); return }
        #expect(d.sm.isDraining(x))
        #expect(d.last.close.isEmpty, "x has a call in flight: it is not closed under it")
        #expect(d.refused.count == 1, "the call waiting on y fails: x is draining, there is no other core")
        #expect(d.request() == .refuse(.unavailable(.allCoresEjected)))
        d.finished(x)
        #expect(d.last.close == [x])
        #expect(d.sm.outstanding(on: x) == nil)
        #expect(d.sm.connectionClosed(SM.ConnectionID(raw: 99), withError: true, now: d.now) == .none,
                "an unknown connection is ignored")
        d.checkInvariants()
    }

    // MARK: Refusals

    @Test("With every core down, calls are refused at once and none waits")
    func allCoresDown() throws {
        var d = Driver(Self.machine(cores: 2, ejectAfter: 1))
        d.request()
        d.connectFailed(d.connecting[0])              // core 0 ejected; the call moves to core 1
        #expect(d.refused.isEmpty)
        d.connectFailed(d.connecting[0])              // core 1 ejected too
        #expect(d.refused.values.allSatisfy { $0 == .unavailable(.allCoresEjected) } && d.refused.count == 1)
        for _ in 0..<10 {
            #expect(d.request() == .refuse(.unavailable(.allCoresEjected)))
            #expect(d.last.connect.isEmpty)
        }
        #expect(d.sm.waitingCount == 0)
        // The first probe is due: the call that finds it due is still refused (no call waits on
        // a probe), and the probe goes out.
        d.now = max(d.now, d.timer ?? 0)
        #expect(d.request() == .refuse(.unavailable(.allCoresEjected)))
        #expect(d.last.connect.count == 1 && d.last.connect[0].isProbe)
        d.checkInvariants()
    }

    @Test("The health check reaching a core ends its backoff or ejection at once: the next call connects")
    func reachableEndsBackoff() throws {
        // Backing off, nothing up: refused, until the health check says the core is there.
        var d = Driver(Self.machine())
        d.request()
        d.connectFailed(d.connecting[0])
        #expect(d.request() == .refuse(.unavailable(.noConnection)))
        d.apply(d.sm.reachable(core: 0, now: d.now))
        #expect(d.sm.state(ofCore: 0) == .ready)
        #expect(d.sm.failures(ofCore: 0) == 0)
        guard case .wait = d.request() else { Issue.record("the call should wait for a new connection"); return }
        #expect(d.last.connect.count == 1 && d.last.connect[0].core == 0 && !d.last.connect[0].isProbe)

        // Ejected: the same, before its probe is due.
        var e = try Self.ejectCore0()
        guard case .ejected(let probeAt) = e.sm.state(ofCore: 0) else { Issue.record(); return }
        #expect(e.now < probeAt)
        e.apply(e.sm.reachable(core: 0, now: e.now))
        #expect(e.sm.state(ofCore: 0) == .ready)
        e.checkInvariants()
    }

    @Test("A core backing off with nothing up refuses at once rather than holding calls")
    func backingOffNoConnection() throws {
        var d = Driver(Self.machine())
        d.request()
        d.connectFailed(d.connecting[0])
        #expect(d.request() == .refuse(.unavailable(.noConnection)))
        #expect(d.sm.waitingCount == 0)
    }

    @Test("The waiting queue is bounded: beyond maxWaiting a call is refused as overloaded")
    func waitingBound() throws {
        var d = Driver(Self.machine(maxConnections: 1, depth: 8, maxWaiting: 3))
        for _ in 0..<3 {
            guard case .wait = d.request() else { Issue.record(); return }
        }
        #expect(d.request() == .refuse(.unavailable(.overloaded)))
        #expect(d.sm.waitingCount == 3)
        d.connected(d.connecting[0])
        #expect(d.last.use.count == 3)
        #expect(d.request() == .use(d.established[0]))
    }

    @Test("Cancelling a waiting call removes it; no action names it afterwards")
    func cancelWaiting() throws {
        var d = Driver(Self.machine())
        guard case .wait(let r0) = d.request(), case .wait(let r1) = d.request() else { Issue.record(); return }
        d.cancel(r0)
        #expect(d.sm.waitingRequests == [r1])
        let again = d.sm.cancel(r0)
        #expect(!again, "no longer waiting")
        d.connected(d.connecting[0])
        #expect(d.last.use.map(\.request) == [r1])
    }

    // MARK: Closed connections

    @Test("A connection closed mid-flight reports its calls as lost; they are never resent")
    func closedMidFlight() throws {
        var d = Driver(Self.machine(maxConnections: 2, depth: 2))
        d.request()
        let c0 = d.connecting[0]
        d.connected(c0)
        d.request()
        #expect(d.sm.outstanding(on: c0) == 2)
        d.closed(c0, withError: false)
        #expect(d.last.lostInFlight == 2)
        #expect(d.last.use.isEmpty, "nothing is resent")
        #expect(d.sm.outstanding(on: c0) == nil)
        #expect(d.sm.failures(ofCore: 0) == 0, "a clean close is not a failure")
        // Late answers for the closed connection are ignored.
        #expect(d.sm.requestFinished(c0) == .none)
        // The next call opens a new connection.
        guard case .wait = d.request() else { Issue.record(); return }
        let c1 = d.connecting[0]
        d.connected(c1)
        d.request()
        d.closed(c1, withError: true)
        #expect(d.last.lostInFlight == 2)
        #expect(d.sm.failures(ofCore: 0) == 1, "a close with an error is")
        guard case .backingOff = d.sm.state(ofCore: 0) else { Issue.record(); return }
        d.checkInvariants()
    }

    @Test("Shutdown refuses waiting calls and closes connections once nothing is in flight on them")
    func shutdown() throws {
        var d = Driver(Self.machine(maxConnections: 3, depth: 1))
        d.request()
        let a = d.connecting[0]
        d.connected(a)
        d.request()                      // opens b
        d.request()                      // opens c
        let (b, c) = (d.connecting[0], d.connecting[1])
        d.connected(b)                   // takes r1; r2 waits for c
        #expect(d.waiting.count == 1)
        d.apply(d.sm.shutdown())
        #expect(d.last.refuse.map(\.failure) == [.unavailable(.shutDown)])
        #expect(d.last.close.isEmpty, "a and b have calls in flight")
        #expect(d.request() == .refuse(.unavailable(.shutDown)))
        d.finished(a)
        #expect(d.last.close == [a])
        d.connected(c)
        #expect(d.last.close == [c])
        d.closed(b, withError: true)
        #expect(d.last.lostInFlight == 1)
        #expect(d.waiting.isEmpty)

        var idle = Driver(Self.machine())
        idle.request()
        let i = idle.connecting[0]
        idle.connected(i)
        idle.finished(i)
        idle.apply(idle.sm.shutdown())
        #expect(idle.last.close == [i])
    }

    // MARK: Timer

    @Test("One timer, armed for the earliest backoff or probe, cancelled when nothing is due")
    func oneTimer() throws {
        var d = Driver(Self.machine(cores: 2, ejectAfter: 5, seed: 3))
        d.request()
        d.connectFailed(d.connecting[0])       // core 0 backs off; the call moves to core 1
        guard case .backingOff(let until0) = d.sm.state(ofCore: 0) else { Issue.record(); return }
        #expect(d.last.scheduleTimer == until0)
        d.now += 1
        d.connectFailed(d.connecting[0])       // core 1 backs off too
        guard case .backingOff(let until1) = d.sm.state(ofCore: 1) else { Issue.record(); return }
        #expect(d.timer == min(until0, until1))
        d.now = max(until0, until1)
        d.fireTimer()
        #expect(d.sm.state(ofCore: 0) == .ready && d.sm.state(ofCore: 1) == .ready)
        #expect(d.last.cancelTimer || d.last.scheduleTimer == nil)
        #expect(d.timer == nil)
    }

    // MARK: Property

    @Test("After any sequence of events every call handed an id is eventually sent or refused",
          arguments: Array(UInt64(0)..<60))
    func noneWaitsForever(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed &* 7919 &+ 1)
        let cores = Int.random(in: 1...3, using: &rng)
        var d = Driver(Self.machine(cores: cores, maxConnections: Int.random(in: 1...4, using: &rng),
                                    depth: Int.random(in: 1...3, using: &rng), base: 10 * Self.ms, max: 200 * Self.ms,
                                    ejectAfter: Int.random(in: 1...4, using: &rng),
                                    maxWaiting: Int.random(in: 1...12, using: &rng), seed: seed))
        for _ in 0..<500 {
            d.now += UInt64.random(in: 0...(5 * Self.ms), using: &rng)
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<35:
                d.request()
            case 35..<55:
                if let c = d.inFlight.filter({ $0.value > 0 }).keys.sorted().randomElement(using: &rng) { d.finished(c) }
            case 55..<70:
                if let c = d.connecting.randomElement(using: &rng) { d.connected(c) }
            case 70..<80:
                if let c = d.connecting.randomElement(using: &rng) { d.connectFailed(c) }
            case 80..<86:
                if let c = d.established.randomElement(using: &rng) { d.closed(c, withError: Bool.random(using: &rng)) }
            case 86..<95:
                if d.timer != nil { d.fireTimer() }
            default:
                if let id = d.waiting.sorted(by: { $0.raw < $1.raw }).randomElement(using: &rng) { d.cancel(id) }
            }
            d.checkInvariants()
        }
        // Let the world settle: every connect ends one way or the other; calls finish.
        var steps = 0
        while !d.waiting.isEmpty && steps < 10_000 {
            steps += 1
            d.now += UInt64.random(in: 0...(5 * Self.ms), using: &rng)
            if let c = d.connecting.randomElement(using: &rng) {
                if Bool.random(using: &rng) { d.connected(c) } else { d.connectFailed(c) }
            } else if let c = d.inFlight.filter({ $0.value > 0 }).keys.sorted().first {
                d.finished(c)
            } else if d.timer != nil {
                d.fireTimer()
            } else {
                break
            }
            d.checkInvariants()
        }
        #expect(d.waiting.isEmpty, "calls left waiting: \(d.waiting)")
        for id in d.handedOut {
            #expect(d.used[id] != nil || d.refused[id] != nil || d.cancelled.contains(id), "\(id) was never answered")
        }
        #expect(!d.handedOut.isEmpty)
    }
}
