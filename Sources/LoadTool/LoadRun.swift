import NIOCore
import NIOPosix

/// Why a run could not take place (as opposed to calls that failed, which the report counts).
public struct LoadError: Error, CustomStringConvertible {
    public var description: String
}

/// Progress so far, once a second.
public struct LoadProgress: Sendable {
    /// Seconds since measuring began; negative during the warm-up.
    public var elapsed: Double
    public var stats: LoadStats
}

/// One run of the load tool: connect, set up, drive every connection on its event loop, report.
///
///     let run = try LoadRun(configuration)
///     let report = try await run.run { progress in … }
///
/// `stop()` (from a signal handler, say) ends it early; the report covers what ran.
public actor LoadRun {
    public let configuration: LoadConfiguration
    private var connections: [LoadConnection] = []
    private var stopRequested = false

    public init(_ configuration: LoadConfiguration) throws {
        if let problem = configuration.problem { throw LoadError(description: problem) }
        self.configuration = configuration
    }

    /// Start nothing more: the calls in flight finish, then `run` returns its report.
    public func stop() {
        stopRequested = true
        for c in connections { c.stop() }
    }

    public func run(progress: (@Sendable (LoadProgress) -> Void)? = nil) async throws -> LoadReport {
        let config = configuration
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        do {
            let report = try await drive(group: group, progress: progress)
            try await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func drive(group: MultiThreadedEventLoopGroup, progress: (@Sendable (LoadProgress) -> Void)?) async throws -> LoadReport {
        let config = configuration
        let content = RequestContent(config)
        do {
            for i in 0..<config.connections {
                connections.append(try await LoadConnection.connect(index: i, content: content, eventLoop: group.next()))
            }
        } catch {
            await closeAll()
            throw LoadError(description: "cannot connect to \(config.authority): \(error)")
        }

        var serviceID = config.serviceID ?? 0
        if config.scenario == .startTask && config.serviceID == nil {
            let outcome = try await connections[0].setup(LoadCall(method: .startService, step: 0)).get()
            guard case .ok(let id) = outcome else {
                await closeAll()
                if case .failed(let code, let message) = outcome {
                    throw LoadError(description: "setup: StartService failed with \(ErrorCode.name(code, transport: config.transport))"
                                    + (message.map { ": \($0)" } ?? ""))
                }
                throw LoadError(description: "setup: StartService failed")
            }
            serviceID = id
        }

        let start = nowNanos()
        let measureStart = start + config.warmup.nanoseconds
        let end = config.duration.map { measureStart + $0.nanoseconds } ?? .max
        let timing = RunTiming(start: start, measureStart: measureStart, end: end)
        let finished = connections.map { $0.begin(timing: timing, serviceID: serviceID) }
        if stopRequested { for c in connections { c.stop() } }

        let all = EventLoopFuture.whenAllSucceed(finished, on: group.next())
        let connections = self.connections
        let results: [ConnectionResult] = try await withThrowingTaskGroup(of: [ConnectionResult]?.self) { tasks in
            tasks.addTask { try await all.get() }
            if let progress {
                tasks.addTask {
                    // Ends when cancelled (the run is over): sleep throws, the ticker returns.
                    while (try? await Task.sleep(nanoseconds: 1_000_000_000)) != nil {
                        var merged = LoadStats()
                        for c in connections { merged.merge(try await c.snapshot().get()) }
                        progress(LoadProgress(elapsed: Double(nowNanos() - measureStart) / 1e9, stats: merged))
                    }
                    return nil
                }
            }
            var results: [ConnectionResult] = []
            while let next = try await tasks.next() {
                if let next {
                    results = next
                    tasks.cancelAll()  // the progress ticker
                }
            }
            return results
        }
        await closeAll()

        var stats = LoadStats()
        for r in results { stats.merge(r.stats) }
        let endedAt = results.map(\.endedAt).max() ?? measureStart
        return LoadReport(
            configuration: config, duration: max(Double(endedAt - measureStart) / 1e9, 1e-9), stats: stats,
            serviceID: config.scenario == .startTask ? serviceID : nil,
            connectionsLost: results.filter(\.lost).count)
    }

    private func closeAll() async {
        for c in connections { try? await c.close().get() }
    }
}
