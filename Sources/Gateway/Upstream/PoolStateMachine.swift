/// Decides which connection to a task core each call goes out on, when to open and close
/// connections, and when a failing core is ejected and probed back. It does no I/O and reads no
/// clock: `now` comes in as nanoseconds, randomness comes from the generator it is given, and
/// every input returns `Actions` that its owner (`UpstreamPool`, one per event loop) carries out.
/// Tested as a value with a fake clock and a seeded generator (after postgres-nio's
/// `ConnectionPoolModule/PoolStateMachine.swift`, which returns `Action { request; connection }`).
///
/// The pool of one event loop:
/// - cores are indices into the configured address list; connections and waiting calls get ids
///   this machine allocates;
/// - a call goes on the connection with the fewest calls outstanding across every core that is
///   not ejected (least outstanding); when even that one has `pipelineDepth` calls, a new
///   connection is opened on the least loaded core below `maxConnectionsPerCore` and the call
///   waits for it; when no connection can be opened, calls pipeline deeper on the least busy one;
/// - calls wait only while a connection they can use is being opened, in one FIFO queue bounded
///   by `maxWaiting`; they are never bound to the connection being opened but go to whichever
///   connection can take them first. A connection that comes up takes waiting calls up to
///   `pipelineDepth`, and more only when no other connection is on its way for them;
/// - when a connect fails, the calls waiting for it go to another core, or deeper on a live
///   connection, or are refused UNAVAILABLE: they are not held through the backoff;
/// - a failed connect (or a connection that closed with an error) puts its core in backoff:
///   exponential from `backoffBase`, capped at `backoffMax`, with full jitter (a delay drawn
///   uniformly from [0, cap]: AWS Architecture Blog, "Exponential Backoff And Jitter", 2015);
/// - with `keepEveryCoreConnected`, while the pool has any connection, every ready core has
///   at least one (a core back from its backoff is connected at once, and so takes its share
///   again);
/// - after `ejectAfterFailures` failures in a row the core is ejected: it takes no calls, its
///   idle connections are closed (busy ones when their last call finishes), and when its
///   backoff expires exactly one probe goes out: a new connection, or a connect still under way
///   from before the ejection. The probe connecting un-ejects the core and resets its count;
///   the probe failing ejects it again with the next, doubled, cap. Calls never wait on a
///   probe: while every core is ejected they are refused at once.
///
/// Never a hang: after every input, either no call waits or a connection that can serve the
/// waiting calls is being opened (and a connect always ends, in `connected` or `connectFailed`,
/// bounded by the owner's connect timeout). A call that cannot be served is refused at once with
/// UNAVAILABLE (HTTP 503 to REST clients). Calls already written to a connection that then
/// drops are the owner's to fail UNAVAILABLE: they are never resent, because starting a task is
/// not idempotent and the core may have run it.
struct PoolStateMachine<RNG: RandomNumberGenerator> {
    struct Configuration: Sendable, Equatable {
        /// Connections per event loop to each core (established, being opened, and the probe;
        /// not those draining after an ejection). A core runs the writes pipelined on one
        /// connection one after another (RFC 9112 §9.3.2), so concurrency toward a core comes
        /// from connections.
        var maxConnectionsPerCore: Int
        /// Calls in flight on one connection before another is preferred or opened. 2 keeps a
        /// connection busy (one call being answered, the next already written) without making a
        /// call wait behind a long head-of-line queue.
        var pipelineDepth: Int
        /// Backoff cap after the first failure; the cap doubles with each failure in a row. A
        /// connect to a core on the same network takes well under a millisecond, so 50 ms does
        /// not hammer a restarting core yet makes a blip cost little.
        var backoffBaseNanos: UInt64
        /// The cap stops growing here: a core that came back is probed, and so back in use,
        /// within 5 s.
        var backoffMaxNanos: UInt64
        /// Failures in a row (failed connects, connections closed with an error) that eject a
        /// core. One failure may be a blip (a reset from a full accept queue); three in a row,
        /// with backoff between them, is a core that is down.
        var ejectAfterFailures: Int
        /// Calls waiting for a connection, at most; beyond it a call is refused at once
        /// (UNAVAILABLE, overloaded). Calls wait only for a connect, so the queue absorbs a
        /// cold-start burst (1024 per event loop); past it connecting is the bottleneck and
        /// refusing beats queueing. At least 1.
        var maxWaiting: Int
        /// While the pool has any connection, every ready core keeps at least one: a core back
        /// from its backoff is connected at once and takes its share of calls again, instead
        /// of waiting until the other cores' connections are all busy (several cores of one
        /// store). Off by default: one core gains nothing from it.
        var keepEveryCoreConnected = false
    }

    /// A connection, allocated by the machine in `Actions.connect`.
    struct ConnectionID: Hashable, Comparable, Sendable, CustomStringConvertible {
        let raw: UInt64
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.raw < rhs.raw }
        var description: String { "conn\(raw)" }
    }

    /// A call waiting for a connection, handed out by `request(now:)` when it has to wait.
    struct RequestID: Hashable, Sendable, CustomStringConvertible {
        let raw: UInt64
        var description: String { "req\(raw)" }
    }

    enum UnavailableReason: Sendable, Equatable {
        /// Every core is ejected after failing, and none has passed a probe yet.
        case allCoresEjected
        /// No connection is up and none can be opened now: the cores that are not ejected
        /// are backing off after a failure.
        case noConnection
        /// `maxWaiting` calls already wait for a connection.
        case overloaded
        /// `shutdown()` was called.
        case shutDown
    }

    /// Why a call was not sent. Always gRPC UNAVAILABLE (HTTP 503): the call never reached a
    /// core, so a client may retry it.
    enum Failure: Error, Sendable, Equatable {
        case unavailable(UnavailableReason)
    }

    enum CoreState: Sendable, Equatable {
        /// Takes calls and may open connections.
        case ready
        /// A connect failed (fewer than `ejectAfterFailures` in a row): its live connections
        /// still take calls, but no connection is opened to it before `until`.
        case backingOff(until: UInt64)
        /// Ejected: takes no calls; one probe connection is opened at `probeAt`.
        case ejected(probeAt: UInt64)
        /// Ejected, and its one probe is being opened: the connection from a `Connect` with
        /// `isProbe`, or a connect from before the ejection that was still under way.
        case probing(ConnectionID)
    }

    struct Actions: Equatable {
        struct Use: Equatable {
            var request: RequestID
            var connection: ConnectionID
        }

        struct Refusal: Equatable {
            var request: RequestID
            var failure: Failure
        }

        struct Connect: Equatable {
            var core: Int
            var connection: ConnectionID
            /// The one connection to an ejected core; report it like any other.
            var isProbe: Bool
        }

        /// Send these waiting calls on these connections, in this order.
        var use: [Use] = []
        /// Fail these waiting calls with UNAVAILABLE; they were never sent.
        var refuse: [Refusal] = []
        /// Open these connections; report each back with `connected` or `connectFailed`.
        var connect: [Connect] = []
        /// Close these connections (nothing in flight on them); the machine has forgotten them.
        var close: [ConnectionID] = []
        /// From `connectionClosed`: this many calls were in flight on the connection. Fail them
        /// UNAVAILABLE; never resend them (a task start is not idempotent).
        var lostInFlight = 0
        /// Arm the pool's one timer for this instant, replacing the armed one; call
        /// `timerFired(now:)` then.
        var scheduleTimer: UInt64?
        /// Cancel the armed timer: nothing is due any more.
        var cancelTimer = false

        static var none: Actions { Actions() }
    }

    /// What happens to a new call.
    enum RequestAction: Equatable {
        /// Send it on this connection now.
        case use(ConnectionID)
        /// It waits: a later `Actions.use` or `Actions.refuse` names this id (or `cancel` it).
        case wait(RequestID)
        /// Fail it at once; it was never sent.
        case refuse(Failure)
    }

    struct Admission: Equatable {
        var request: RequestAction
        /// What else to do: connections to open, the timer, other waiting calls that moved.
        var actions: Actions
    }

    private struct Core {
        var state: CoreState = .ready
        var failures = 0
    }

    private struct Connection {
        let id: ConnectionID
        let core: Int
        var established = false
        var outstanding = 0
        /// On an ejected core: takes no calls, closed when its last one finishes.
        var draining = false
    }

    let configuration: Configuration
    private var generator: RNG
    private var cores: [Core]
    /// In id order, so that ties break the same way every time. A few dozen at most.
    private var connections: [Connection] = []
    private var waiting: [RequestID] = []
    private var head = 0
    private var nextConnectionID: UInt64 = 0
    private var nextRequestID: UInt64 = 0
    private var timerArmedFor: UInt64?
    private var isShutDown = false

    init(coreCount: Int, configuration: Configuration = .defaults, generator: RNG) {
        precondition(coreCount >= 1, "at least one core address")
        precondition(configuration.maxConnectionsPerCore >= 1 && configuration.pipelineDepth >= 1)
        precondition(configuration.ejectAfterFailures >= 1 && configuration.maxWaiting >= 1)
        self.configuration = configuration
        self.generator = generator
        self.cores = Array(repeating: Core(), count: coreCount)
    }

    // MARK: Inputs

    /// A call is to be sent.
    mutating func request(now: UInt64) -> Admission {
        var actions = Actions()
        advance(now: now, into: &actions)
        if isShutDown {
            return Admission(request: .refuse(.unavailable(.shutDown)), actions: actions)
        }
        if waitingCount >= configuration.maxWaiting {
            finish(&actions)
            return Admission(request: .refuse(.unavailable(.overloaded)), actions: actions)
        }
        let id = RequestID(raw: nextRequestID)
        nextRequestID += 1
        waiting.append(id)
        drain(into: &actions)
        finish(&actions)
        // The new call is last in the queue; older calls may have moved too and stay in `actions`.
        if let i = actions.use.firstIndex(where: { $0.request == id }) {
            let connection = actions.use.remove(at: i).connection
            return Admission(request: .use(connection), actions: actions)
        }
        if let i = actions.refuse.firstIndex(where: { $0.request == id }) {
            let failure = actions.refuse.remove(at: i).failure
            return Admission(request: .refuse(failure), actions: actions)
        }
        return Admission(request: .wait(id), actions: actions)
    }

    /// A connection from `Actions.connect` is established.
    mutating func connected(_ id: ConnectionID, now: UInt64) -> Actions {
        var actions = Actions()
        advance(now: now, into: &actions)
        guard let i = index(of: id), !connections[i].established else {
            finish(&actions)
            return actions
        }
        if isShutDown {
            connections.remove(at: i)
            actions.close.append(id)
            return actions
        }
        connections[i].established = true
        // Any connect that succeeds shows the core is up: the probe, or one opened before the
        // core was ejected.
        let core = connections[i].core
        cores[core].failures = 0
        cores[core].state = .ready
        drain(into: &actions)
        finish(&actions)
        return actions
    }

    /// A connection from `Actions.connect` could not be established (including the owner's
    /// connect timeout). With `eject`, the core is ejected at once, whatever its count: it
    /// answered, but must not take calls (it serves another store).
    mutating func connectFailed(_ id: ConnectionID, eject: Bool = false, now: UInt64) -> Actions {
        var actions = Actions()
        advance(now: now, into: &actions)
        if let i = index(of: id), !connections[i].established {
            let core = connections[i].core
            connections.remove(at: i)
            if eject { cores[core].failures = max(cores[core].failures, configuration.ejectAfterFailures - 1) }
            recordFailure(core: core, connection: id, now: now, into: &actions)
            drain(into: &actions)
        }
        finish(&actions)
        return actions
    }

    /// An established connection closed (or one being opened did: then as `connectFailed`).
    /// The calls in flight on it are reported in `lostInFlight` for the owner to fail, never to
    /// resend. A close with an error (reset, I/O error, a response that could not be parsed)
    /// counts toward ejection; a clean close (the core's keep-alive timeout, our own `close`)
    /// does not.
    mutating func connectionClosed(_ id: ConnectionID, withError: Bool, now: UInt64) -> Actions {
        guard let i = index(of: id) else {
            var actions = Actions()
            advance(now: now, into: &actions)
            finish(&actions)
            return actions
        }
        guard connections[i].established else {
            return connectFailed(id, now: now)
        }
        var actions = Actions()
        advance(now: now, into: &actions)
        let closed = connections.remove(at: i)
        actions.lostInFlight = closed.outstanding
        if isShutDown { return actions }
        if withError {
            recordFailure(core: closed.core, connection: id, now: now, into: &actions)
        }
        drain(into: &actions)
        finish(&actions)
        return actions
    }

    /// A call on this connection was answered (or failed while the connection stays up).
    mutating func requestFinished(_ id: ConnectionID) -> Actions {
        var actions = Actions()
        guard let i = index(of: id), connections[i].established, connections[i].outstanding > 0 else {
            return actions
        }
        connections[i].outstanding -= 1
        if connections[i].draining || isShutDown, connections[i].outstanding == 0 {
            connections.remove(at: i)
            actions.close.append(id)
        }
        drain(into: &actions)
        finish(&actions)
        return actions
    }

    /// A connection made outside the pool (the health check's) reached `core`: it is up, so a
    /// backoff or an ejection ends now instead of when its timer says. Without this, a lone
    /// core that came back kept failing calls UNAVAILABLE until its backoff ran out while the
    /// health check already said SERVING. A probe under way is left to finish.
    mutating func reachable(core: Int, now: UInt64) -> Actions {
        var actions = Actions()
        advance(now: now, into: &actions)
        guard !isShutDown, cores.indices.contains(core) else {
            finish(&actions)
            return actions
        }
        switch cores[core].state {
        case .backingOff, .ejected:
            cores[core].failures = 0
            cores[core].state = .ready
        case .ready, .probing:
            break
        }
        drain(into: &actions)
        finish(&actions)
        return actions
    }

    /// The timer from `Actions.scheduleTimer` fired.
    mutating func timerFired(now: UInt64) -> Actions {
        timerArmedFor = nil
        var actions = Actions()
        advance(now: now, into: &actions)
        drain(into: &actions)
        finish(&actions)
        return actions
    }

    /// A waiting call gave up (its deadline passed, its client went away). Returns whether it
    /// was waiting; if so the owner answers it, and no action will name it.
    mutating func cancel(_ id: RequestID) -> Bool {
        guard let i = waiting[head...].firstIndex(of: id) else { return false }
        waiting.remove(at: i)
        return true
    }

    /// Stops the pool: waiting calls are refused, idle connections closed, busy ones closed when
    /// their last call finishes, connections being opened closed when they connect.
    mutating func shutdown() -> Actions {
        var actions = Actions()
        guard !isShutDown else { return actions }
        isShutDown = true
        for id in waiting[head...] {
            actions.refuse.append(.init(request: id, failure: .unavailable(.shutDown)))
        }
        waiting.removeAll()
        head = 0
        for c in connections where c.established && c.outstanding == 0 {
            actions.close.append(c.id)
        }
        connections.removeAll { $0.established && $0.outstanding == 0 }
        if timerArmedFor != nil {
            actions.cancelTimer = true
            timerArmedFor = nil
        }
        return actions
    }

    // MARK: Introspection

    var coreCount: Int { cores.count }

    /// Times a core was ejected, since start (metrics).
    private(set) var ejections = 0

    var waitingCount: Int { waiting.count - head }

    /// The calls waiting, oldest first.
    var waitingRequests: [RequestID] { Array(waiting[head...]) }

    func state(ofCore core: Int) -> CoreState { cores[core].state }

    /// Failures in a row of the core, reset by a connect that succeeds.
    func failures(ofCore core: Int) -> Int { cores[core].failures }

    /// Calls in flight on an established connection; nil if it is not one.
    func outstanding(on id: ConnectionID) -> Int? {
        index(of: id).flatMap { connections[$0].established ? connections[$0].outstanding : nil }
    }

    /// Established connections of the core, draining ones included.
    func establishedConnections(ofCore core: Int) -> [ConnectionID] {
        connections.filter { $0.core == core && $0.established }.map(\.id)
    }

    /// Connections of the core being opened, the probe included.
    func connectingConnections(ofCore core: Int) -> [ConnectionID] {
        connections.filter { $0.core == core && !$0.established }.map(\.id)
    }

    func isDraining(_ id: ConnectionID) -> Bool {
        index(of: id).map { connections[$0].draining } ?? false
    }

    /// The cap of the jittered backoff after `failures` failures in a row:
    /// `min(backoffMax, backoffBase · 2^(failures − 1))`.
    static func backoffCap(failures: Int, base: UInt64, max: UInt64) -> UInt64 {
        guard failures >= 1 else { return 0 }
        let shift = failures - 1
        // base << shift without overflow: past max as soon as base > max >> shift.
        if shift >= 64 || base > (max >> UInt64(shift)) { return max }
        return Swift.min(max, base << UInt64(shift))
    }

    func backoffCap(failures: Int) -> UInt64 {
        Self.backoffCap(failures: failures, base: configuration.backoffBaseNanos, max: configuration.backoffMaxNanos)
    }

    // MARK: Decisions

    private func index(of id: ConnectionID) -> Int? {
        connections.firstIndex { $0.id == id }
    }

    /// Not ejected: its live connections take calls.
    private func isUsable(_ core: Int) -> Bool {
        switch cores[core].state {
        case .ready, .backingOff: true
        case .ejected, .probing: false
        }
    }

    /// Time-driven transitions: backoffs that ended, probes that are due.
    private mutating func advance(now: UInt64, into actions: inout Actions) {
        guard !isShutDown else { return }
        for core in cores.indices {
            switch cores[core].state {
            case .backingOff(let until) where until <= now:
                cores[core].state = .ready
            case .ejected(let probeAt) where probeAt <= now:
                if let opening = connections.first(where: { $0.core == core && !$0.established }) {
                    // A connect from before the ejection is still under way: its outcome is the
                    // probe. (Opening another could pass `maxConnectionsPerCore`.)
                    cores[core].state = .probing(opening.id)
                } else {
                    let id = open(core: core)
                    cores[core].state = .probing(id)
                    actions.connect.append(.init(core: core, connection: id, isProbe: true))
                }
            default:
                break
            }
        }
    }

    private mutating func open(core: Int) -> ConnectionID {
        let id = ConnectionID(raw: nextConnectionID)
        nextConnectionID += 1
        connections.append(Connection(id: id, core: core))
        return id
    }

    private mutating func recordFailure(core: Int, connection: ConnectionID, now: UInt64, into actions: inout Actions) {
        switch cores[core].state {
        case .probing(let probe) where probe == connection:
            cores[core].failures += 1
            cores[core].state = .ejected(probeAt: later(now, by: jitteredBackoff(failures: cores[core].failures)))
        case .probing, .ejected:
            // Already out: connects started before the ejection say nothing new; only the
            // probe's outcome counts.
            break
        case .ready, .backingOff:
            cores[core].failures += 1
            let at = later(now, by: jitteredBackoff(failures: cores[core].failures))
            if cores[core].failures >= configuration.ejectAfterFailures {
                eject(core: core, probeAt: at, into: &actions)
            } else {
                cores[core].state = .backingOff(until: at)
            }
        }
    }

    private mutating func eject(core: Int, probeAt: UInt64, into actions: inout Actions) {
        cores[core].state = .ejected(probeAt: probeAt)
        ejections += 1
        for i in connections.indices where connections[i].core == core && connections[i].established {
            connections[i].draining = true
            if connections[i].outstanding == 0 {
                actions.close.append(connections[i].id)
            }
        }
        connections.removeAll { $0.core == core && $0.draining && $0.outstanding == 0 }
    }

    /// Full jitter: uniform in [0, cap].
    private mutating func jitteredBackoff(failures: Int) -> UInt64 {
        UInt64.random(in: 0...backoffCap(failures: failures), using: &generator)
    }

    private func later(_ now: UInt64, by delay: UInt64) -> UInt64 {
        now > UInt64.max - delay ? UInt64.max : now + delay
    }

    /// Calls in flight per core, on its established connections.
    private func coreLoads() -> [Int] {
        var loads = Array(repeating: 0, count: cores.count)
        for c in connections where c.established { loads[c.core] += c.outstanding }
        return loads
    }

    /// The least busy connection that takes calls (fewest outstanding, then the least busy
    /// core, then the oldest), below `pipelineDepth` unless `deeper`.
    private func bestConnection(deeper: Bool) -> Int? {
        let loads = coreLoads()
        var best: Int?
        for i in connections.indices {
            let c = connections[i]
            guard c.established, !c.draining, isUsable(c.core) else { continue }
            guard deeper || c.outstanding < configuration.pipelineDepth else { continue }
            if let b = best {
                let o = connections[b]
                if (c.outstanding, loads[c.core]) < (o.outstanding, loads[o.core]) { best = i }
            } else {
                best = i
            }
        }
        return best
    }

    /// Calls the connections being opened to usable cores will take at `pipelineDepth`.
    private var connectingSlots: Int {
        connections.reduce(0) { $0 + (!$1.established && isUsable($1.core) ? configuration.pipelineDepth : 0) }
    }

    /// The core a new connection goes to: ready (not backing off, not ejected), below
    /// `maxConnectionsPerCore`, fewest calls outstanding, then fewest connections, then first.
    private func coreToOpen() -> Int? {
        let loads = coreLoads()
        var counts = Array(repeating: 0, count: cores.count)
        for c in connections where !c.draining { counts[c.core] += 1 }
        var best: Int?
        for core in cores.indices where cores[core].state == .ready && counts[core] < configuration.maxConnectionsPerCore {
            if let b = best, (loads[b], counts[b]) <= (loads[core], counts[core]) { continue }
            best = core
        }
        return best
    }

    /// Serves waiting calls, oldest first, until none waits or those left are covered by
    /// connections being opened. Leaves no call waiting without such a connection.
    private mutating func drain(into actions: inout Actions) {
        guard !isShutDown else { return }
        while head < waiting.count {
            if let i = bestConnection(deeper: false) {
                dispatch(to: i, into: &actions)
                continue
            }
            let slots = connectingSlots
            if waitingCount <= slots { break }
            if let core = coreToOpen() {
                let id = open(core: core)
                actions.connect.append(.init(core: core, connection: id, isProbe: false))
                continue
            }
            // No connection can be opened: pipelining deeper beats waiting with nothing coming.
            if let i = bestConnection(deeper: true) {
                dispatch(to: i, into: &actions)
                continue
            }
            if slots > 0 { break }  // they take the calls beyond pipelineDepth when they connect
            let reason: UnavailableReason = cores.indices.contains(where: isUsable) ? .noConnection : .allCoresEjected
            for id in waiting[head...] {
                actions.refuse.append(.init(request: id, failure: .unavailable(reason)))
            }
            waiting.removeAll()
            head = 0
        }
        if head > 1024 && head * 2 > waiting.count {
            waiting.removeFirst(head)
            head = 0
        }
        connectIdleCores(into: &actions)
    }

    /// While the pool is in use, every ready core keeps at least one connection: a core
    /// that comes back from a backoff (or a probe) is taken back at once, and least
    /// outstanding sends it its share, instead of waiting until the other cores' connections
    /// are all busy.
    private mutating func connectIdleCores(into actions: inout Actions) {
        guard configuration.keepEveryCoreConnected, !isShutDown, !connections.isEmpty else { return }
        for core in cores.indices where cores[core].state == .ready
            && !connections.contains(where: { $0.core == core && !$0.draining }) {
            let id = open(core: core)
            actions.connect.append(.init(core: core, connection: id, isProbe: false))
        }
    }

    private mutating func dispatch(to i: Int, into actions: inout Actions) {
        let request = waiting[head]
        head += 1
        connections[i].outstanding += 1
        actions.use.append(.init(request: request, connection: connections[i].id))
    }

    /// One timer for the pool, armed for the earliest backoff or probe.
    private mutating func finish(_ actions: inout Actions) {
        guard !isShutDown else { return }
        var want: UInt64?
        for core in cores {
            let due: UInt64? = switch core.state {
            case .backingOff(let until): until
            case .ejected(let probeAt): probeAt
            case .ready, .probing: nil
            }
            if let due { want = want.map { min($0, due) } ?? due }
        }
        guard want != timerArmedFor else { return }
        if let want {
            actions.scheduleTimer = want
        } else {
            actions.cancelTimer = true
        }
        timerArmedFor = want
    }
}

// In an extension, so that the struct keeps its memberwise initialiser (the tests').
extension PoolStateMachine.Configuration {
    /// The machine's part of the pool's configuration; every default is stated there,
    /// once (`UpstreamPool.Configuration`).
    init(_ pool: UpstreamPool.Configuration) {
        maxConnectionsPerCore = pool.maxConnections
        pipelineDepth = pool.pipelineDepth
        backoffBaseNanos = UInt64(max(1, pool.backoffBase.nanoseconds))
        backoffMaxNanos = UInt64(max(1, pool.backoffMax.nanoseconds))
        ejectAfterFailures = pool.ejectAfterFailures
        maxWaiting = pool.maxWaiting
        keepEveryCoreConnected = pool.addresses.count > 1
    }

    /// The pool's defaults, for one core (tests).
    static var defaults: Self {
        Self(UpstreamPool.Configuration(host: "localhost", port: 1))
    }
}
