import NIOConcurrencyHelpers

/// Whether the gateway should get new traffic (README, "Lifecycle"): not before everything
/// started (store, core, pool, listener), not while it drains. Liveness (`/healthz`) does not
/// look at it; readiness (`/readyz`) and grpc.health.v1 do.
public final class Readiness: Sendable {
    public enum State: Sendable, Equatable {
        case starting, ready, draining
    }

    private let box = NIOLockedValueBox(State.starting)

    public init() {}

    public var state: State { box.withLockedValue { $0 } }

    public var isReady: Bool { state == .ready }

    /// `starting` → `ready` → `draining`; never back (a drained process exits).
    public func set(_ state: State) {
        box.withLockedValue { current in
            if current != .draining { current = state }
        }
    }
}
