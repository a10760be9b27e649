import NIOCore
import NIOHTTP1
import NIOPosix

/// When a run starts, measures and ends, in `nowNanos()` time.
struct RunTiming: Sendable {
    /// Units begin; the open-loop schedules start here.
    var start: Int64
    /// After the warm-up: calls of units started before this are neither counted nor timed.
    var measureStart: Int64
    /// No unit starts at or after this (`Int64.max`: no time limit).
    var end: Int64
}

/// The monotonic clock every time of a run is read from.
@inline(__always)
func nowNanos() -> Int64 { Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds) }

/// What a connection hands back when its part of the run is over.
struct ConnectionResult: Sendable {
    var stats: LoadStats
    var endedAt: Int64
    var lost: Bool
}

/// One connection's driver: `streams` slots, each running one unit (a StartTask call, or a
/// journey call after call) at a time, closed loop (a slot starts its next unit as soon as one
/// ends) or open loop (units start on the `OpenLoopSchedule`, waiting for a free slot when all
/// are busy, their latency still counted from their due time).
///
/// `@unchecked Sendable`: every member is read and written on `eventLoop` only; the run reaches
/// it through `eventLoop.execute` / `submit`, so no lock is taken per call.
final class LoadConnection: CallSink, @unchecked Sendable {
    private struct Slot {
        /// Intended start of the slot's unit, and of its current call.
        var unitStart: Int64 = 0
        var callStart: Int64 = 0
        /// The journey step in flight.
        var step = 0
        var serviceID: Int64 = 0
        var stateIDs = [Int32](repeating: 0, count: JourneyPlan.stateCount)
        var taskIDs = [Int32](repeating: 0, count: JourneyPlan.taskCount)
    }

    let index: Int
    let eventLoop: any EventLoop
    private let content: RequestContent
    private var configuration: LoadConfiguration { content.configuration }
    private(set) var channel: (any Channel)?
    private var transport: (any CallTransport)?
    private(set) var stats = LoadStats()
    private var slots: [Slot] = []
    private var free: [Int] = []
    private var busy = 0
    /// Measured units started, against the quota.
    private var started = 0
    private var quota: Int?
    private var timing = RunTiming(start: 0, measureStart: 0, end: .max)
    private var serviceID: Int64 = 0
    private var schedule: OpenLoopSchedule?
    private var nextUnit = 0
    private var unitLimit = Int.max
    private var timer: Scheduled<Void>?
    private var running = false
    private var stopping = false
    private var closing = false
    private var lost = false
    private var ended = false
    /// Made by `begin`: a connection that never began (its run failed to start) owes nothing.
    private var done: EventLoopPromise<ConnectionResult>?
    private var setupPromise: EventLoopPromise<CallOutcome>?

    private init(index: Int, eventLoop: any EventLoop, content: RequestContent) {
        self.index = index
        self.eventLoop = eventLoop
        self.content = content
    }

    /// Opens connection `index` to the configured target.
    static func connect(index: Int, content: RequestContent, eventLoop: any EventLoop) async throws -> LoadConnection {
        let connection = LoadConnection(index: index, eventLoop: eventLoop, content: content)
        let config = content.configuration
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    switch config.transport {
                    case .grpc:
                        let handler = GRPCClientHandler(content: content, sink: connection, allocator: channel.allocator)
                        try sync.addHandler(handler)
                        connection.transport = handler
                    case .rest:
                        try sync.addHTTPClientHandlers()
                        let handler = RESTClientHandler(content: content, sink: connection, allocator: channel.allocator)
                        try sync.addHandler(handler)
                        connection.transport = handler
                    }
                    connection.channel = channel
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        _ = try await bootstrap.connect(host: config.host, port: config.port).get()
        return connection
    }

    // MARK: Control (each entered on `eventLoop`)

    /// One call outside the measurement (the start-task scenario's StartService).
    func setup(_ call: LoadCall) -> EventLoopFuture<CallOutcome> {
        eventLoop.flatSubmit {
            guard let transport = self.transport, transport.isUsable else {
                return self.eventLoop.makeSucceededFuture(.failed(self.notSentCode, "connection closed"))
            }
            let promise = self.eventLoop.makePromise(of: CallOutcome.self)
            self.setupPromise = promise
            transport.send(call, tag: -1)
            return promise.futureResult
        }
    }

    /// Starts the units; the future completes when this connection's part of the run is over.
    func begin(timing: RunTiming, serviceID: Int64) -> EventLoopFuture<ConnectionResult> {
        let done = eventLoop.makePromise(of: ConnectionResult.self)
        eventLoop.execute {
            self.done = done
            self.timing = timing
            self.serviceID = serviceID
            self.running = true
            self.quota = self.configuration.quota(connection: self.index)
            self.slots = Array(repeating: Slot(), count: self.configuration.streams)
            self.free = Array((0..<self.configuration.streams).reversed())
            if self.configuration.scenario == .startTask { self.transport?.prepareStartTask(serviceID: serviceID) }
            let now = nowNanos()
            if let rate = self.configuration.rate {
                let schedule = OpenLoopSchedule(start: timing.start, ratePerSecond: rate, connection: self.index,
                                                of: self.configuration.connections)
                var limit = Int.max
                if timing.end != .max { limit = schedule.firstIndex(atOrAfter: timing.end) }
                if let quota = self.quota { limit = min(limit, schedule.firstIndex(atOrAfter: timing.measureStart) + quota) }
                self.unitLimit = limit
                self.schedule = schedule
                self.pump(now)
            } else {
                while self.canStart(now), let slot = self.free.popLast() {
                    self.startUnit(slot, intended: now)
                }
                self.finishIfDone(now)
            }
        }
        return done.futureResult
    }

    /// Start nothing more; journeys stop after their call in flight.
    func stop() {
        eventLoop.execute {
            self.stopping = true
            self.timer?.cancel()
            self.timer = nil
            self.finishIfDone(nowNanos())
        }
    }

    func snapshot() -> EventLoopFuture<LoadStats> {
        eventLoop.submit { self.stats }
    }

    func close() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit {
            self.closing = true
            guard let channel = self.channel else { return self.eventLoop.makeSucceededVoidFuture() }
            self.transport?.close()
            return channel.closeFuture
        }
    }

    // MARK: Units

    private var usable: Bool { transport?.isUsable ?? false }

    /// The failure of a call that could not be sent: the connection is gone.
    private var notSentCode: Int { configuration.transport == .grpc ? GRPCCode.unavailable : ErrorCode.connectionClosed }

    private func canStart(_ now: Int64) -> Bool {
        !stopping && usable && now < timing.end && (quota.map { started < $0 } ?? true)
    }

    private func startUnit(_ slot: Int, intended: Int64) {
        busy += 1
        if intended >= timing.measureStart { started += 1 }
        slots[slot].unitStart = intended
        slots[slot].callStart = intended
        slots[slot].step = 0
        send(slot)
    }

    private func send(_ slot: Int) {
        guard let transport else { return }
        switch configuration.scenario {
        case .startTask:
            transport.send(LoadCall(method: .startTask, serviceID: serviceID, step: -1), tag: slot)
        case .journey:
            transport.send(journeyCall(slots[slot]), tag: slot)
        }
    }

    private func journeyCall(_ slot: Slot) -> LoadCall {
        let step = content.plan.steps[slot.step]
        var call = LoadCall(method: step.method, serviceID: slot.serviceID, step: slot.step)
        switch step.method {
        case .startTask: call.stateID = step.state.map { slot.stateIDs[$0] } ?? 0
        case .completeTask: call.taskID = step.task.map { slot.taskIDs[$0] } ?? 0
        case .completeState: call.stateID = step.state.map { slot.stateIDs[$0] } ?? 0
        default: break
        }
        return call
    }

    /// Keeps the id a start answered with, for the calls that name it.
    private func remember(_ id: Int64, slot: Int, step: JourneyStep) {
        switch step.method {
        case .startService: slots[slot].serviceID = id
        case .startState: if let s = step.state { slots[slot].stateIDs[s] = Int32(truncatingIfNeeded: id) }
        case .startTask: if let t = step.task { slots[slot].taskIDs[t] = Int32(truncatingIfNeeded: id) }
        default: break
        }
    }

    // MARK: CallSink

    func completed(tag: Int, outcome: CallOutcome) {
        if tag < 0 {
            setupPromise?.succeed(outcome)
            setupPromise = nil
            return
        }
        let now = nowNanos()
        let measured = slots[tag].unitStart >= timing.measureStart
        let method = configuration.scenario == .startTask ? LoadMethod.startTask : content.plan.steps[slots[tag].step].method
        if measured { stats.record(method, outcome, nanos: now - slots[tag].callStart) }
        if configuration.scenario == .journey {
            let steps = content.plan.steps
            if case .ok(let id) = outcome {
                remember(id, slot: tag, step: steps[slots[tag].step])
                if slots[tag].step + 1 < steps.count {
                    if !stopping {
                        guard usable else {
                            // The connection is gone: the journey fails here (the lost
                            // connection is reported; the calls not made are not counted).
                            if measured { stats.journeyFailed() }
                            return unitEnded(tag, now)
                        }
                        slots[tag].step += 1
                        slots[tag].callStart = now
                        return send(tag)
                    }
                    // Stopped: the journey is abandoned, neither completed nor failed.
                } else if measured {
                    stats.journeyCompleted(nanos: now - slots[tag].unitStart)
                }
            } else if measured {
                stats.journeyFailed()
            }
        }
        unitEnded(tag, now)
    }

    func transportClosed() {
        if !closing { lost = true }
        if let setupPromise {
            self.setupPromise = nil
            setupPromise.succeed(.failed(notSentCode, "connection closed"))
        }
        timer?.cancel()
        timer = nil
        finishIfDone(nowNanos())
    }

    private func unitEnded(_ slot: Int, _ now: Int64) {
        busy -= 1
        if schedule != nil {
            free.append(slot)
            pump(now)
        } else if canStart(now) {
            startUnit(slot, intended: now)
        } else {
            free.append(slot)
            finishIfDone(now)
        }
    }

    // MARK: Open loop

    private var moreScheduled: Bool { !stopping && usable && nextUnit < unitLimit }

    /// Starts every unit due by `now` that a free slot can take, then sleeps until the next
    /// one is due (a busy connection is woken by its next answer instead).
    private func pump(_ now: Int64) {
        guard let schedule else { return }
        while moreScheduled, let slot = free.last {
            let due = schedule.time(nextUnit)
            if due > now { break }
            free.removeLast()
            nextUnit += 1
            startUnit(slot, intended: due)
        }
        if moreScheduled, !free.isEmpty, timer == nil {
            let due = schedule.time(nextUnit)
            timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(UInt64(max(due, 0)))) {
                self.timer = nil
                self.pump(nowNanos())
            }
        }
        finishIfDone(now)
    }

    private func finishIfDone(_ now: Int64) {
        guard running, !ended, busy == 0 else { return }
        let more = schedule != nil ? moreScheduled : canStart(now)
        guard !more else { return }
        // Ending because the connection closed under us (before the units ran out, or while
        // the last calls were in flight): the run is incomplete, say so.
        if !closing && !usable { lost = true }
        ended = true
        timer?.cancel()
        timer = nil
        done?.succeed(ConnectionResult(stats: stats, endedAt: now, lost: lost))
        done = nil
    }
}
