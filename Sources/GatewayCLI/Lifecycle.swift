import Dispatch
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The process's lifecycle (README, "Lifecycle"): parts start one after the other, each only
/// once the one before it runs (store, core, pool, listener), and stop in reverse when
/// SIGTERM or SIGINT arrives, through swift-service-lifecycle's `ServiceGroup`, which shuts
/// its services down from the last to the first and waits for each.
///
/// Starting stays outside the group: the group starts every service at once, while the
/// gateway's pool must not be made before its core listens. Each part that started becomes a
/// `StartedPart` whose `run` waits for the group's graceful shutdown, then stops it. A part
/// that fails to start stops the ones already started (`unwind`), in reverse too.
final class Lifecycle: @unchecked Sendable {
    // Touched only by the task that starts the process, before `run`.
    private var parts: [StartedPart] = []
    private let logger: Logger
    let drain: DrainDeadline

    init(drainTimeout: TimeAmount, logger: Logger) {
        self.logger = logger
        self.drain = DrainDeadline(timeout: drainTimeout)
    }

    /// Records a part that started, with how to stop it.
    func started(_ name: String, stop: @escaping @Sendable () async -> Void) {
        parts.append(StartedPart(name: name, stop: stop))
    }

    /// A start-up step failed: stop what started, last first.
    func unwind() async {
        for part in parts.reversed() { await part.stop() }
        parts = []
    }

    /// Runs until a signal (or a part ending on its own), then stops every part in reverse.
    /// The drain is bounded by the parts themselves (`DrainDeadline`); the group's own bounds
    /// are a backstop a little longer, after which it cancels what is left.
    func run(until termination: TerminationSignal) async throws {
        var configuration = ServiceGroupConfiguration(
            services: parts.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: $0.name)
            },
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .nanoseconds(drain.timeout.nanoseconds) + .seconds(3)
        configuration.maximumCancellationDuration = .seconds(2)
        let group = ServiceGroup(configuration: configuration)
        let drain = self.drain
        let logger = self.logger
        // The signal handler is `TerminationSignal`'s, installed before anything started: a
        // signal during start-up is kept and ends the group as soon as it runs.
        let watcher = Task {
            await termination.wait()
            logger.info("shutting down: draining connections", metadata: ["drain-timeout-ms": "\(drain.timeout.nanoseconds / 1_000_000)"])
            drain.begin()
            await group.triggerGracefulShutdown()
        }
        defer { watcher.cancel() }
        try await group.run()
    }
}

/// One started part: runs until the graceful shutdown, then stops.
struct StartedPart: Service, CustomStringConvertible {
    let name: String
    let stop: @Sendable () async -> Void

    func run() async throws {
        try? await gracefulShutdown()
        await stop()
    }

    var description: String { name }
}

/// The one drain bound of a stop: every part gets what is left of it.
final class DrainDeadline: Sendable {
    let timeout: TimeAmount
    private let deadline = NIOLockedValueBox<NIODeadline?>(nil)

    init(timeout: TimeAmount) { self.timeout = timeout }

    /// Starts the clock (once).
    func begin() {
        deadline.withLockedValue { if $0 == nil { $0 = .now() + timeout } }
    }

    /// What is left of the drain (all of it if it has not begun: a stop after a failed start).
    var remaining: TimeAmount {
        guard let end = deadline.withLockedValue({ $0 }) else { return timeout }
        return max(.zero, end - .now())
    }
}

/// SIGTERM and SIGINT, caught from the moment `install()` returns: install before anything
/// announces that the process is ready, or a signal sent in between (a supervisor, a test
/// that waits for the "listening" line) could be lost and the process never exit.
final class TerminationSignal: @unchecked Sendable {
    // `sources` is written once in `install`, before any signal can be handled.
    private var sources: [any DispatchSourceSignal] = []
    private let fired = NIOLockedValueBox(false)
    private let waiter = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)

    static func install() -> TerminationSignal {
        let t = TerminationSignal()
        for sig in [SIGTERM, SIGINT] {
            // In this order: on Linux, libdispatch installs its own handler when the source
            // is created, and a SIG_IGN set afterwards would replace it (signals then lost).
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { t.fire() }
            source.resume()
            t.sources.append(source)
        }
        return t
    }

    private func fire() {
        fired.withLockedValue { $0 = true }
        waiter.withLockedValue { c in
            c?.resume()
            c = nil
        }
    }

    /// Returns once a signal has arrived (at once if one already did).
    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let already = fired.withLockedValue { $0 }
            if already { return c.resume() }
            waiter.withLockedValue { $0 = c }
            // A signal between the two reads above resumed nothing: check again.
            if fired.withLockedValue({ $0 }) {
                waiter.withLockedValue { w in
                    w?.resume()
                    w = nil
                }
            }
        }
    }
}
