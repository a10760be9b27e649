import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Accepted connections the whole process may hold (the gateway's port and the embedded core's
/// together), kept below the descriptor limit. Out of descriptors, more than accepts fail: a
/// new upstream connection cannot be made, and libdispatch, which runs Swift's global executor
/// here, reads `/proc/<pid>/task/<tid>/stat` to watch its worker threads and crashes the
/// process when that `open` fails (`_dispatch_workq_monitor_pools`; seen with 400 clients
/// against a 256-descriptor limit, issue 11 item 7). So a listener closes a connection it
/// accepts beyond this many at once, and descriptors stay free for everything else.
public final class ConnectionSlots: Sendable {
    public let limit: Int
    private let taken = Atomic<Int>(0)
    private let lastReport = Atomic<UInt64>(0)

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Descriptors kept free for what is not a client connection: upstream connections, the
    /// store, files, libdispatch's reads of /proc.
    public static let reserve = 128

    /// The limit for a process whose descriptor limit is `descriptors`.
    public static func limit(forDescriptors descriptors: Int) -> Int {
        max(16, descriptors - reserve)
    }

    /// The soft descriptor limit, raised to the hard one first (as Go's runtime does): the
    /// soft default of 1,024 is a relic of select(2), which nothing here uses.
    public static func raiseDescriptorLimit() -> Int {
        #if canImport(Glibc)
        var limits = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits) == 0 else { return 1024 }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limits = raised }
        }
        return limits.rlim_cur > UInt(Int32.max) ? Int(Int32.max) : Int(limits.rlim_cur)
        #else
        return 1024
        #endif
    }

    public var inUse: Int { taken.load(ordering: .relaxed) }

    /// Takes a slot for a connection just accepted; false when all are taken (close it).
    public func take() -> Bool {
        var current = taken.load(ordering: .relaxed)
        while true {
            guard current < limit else { return false }
            let (exchanged, original) = taken.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    public func release() {
        taken.subtract(1, ordering: .relaxed)
    }

    /// True at most once per `interval` nanoseconds (now: uptime nanoseconds): whether to log a
    /// refusal now.
    public func shouldReport(now: UInt64, interval: UInt64 = 10_000_000_000) -> Bool {
        let last = lastReport.load(ordering: .relaxed)
        guard last == 0 || now &- last >= interval else { return false }
        return lastReport.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
    }
}

extension ConnectionSlots {
    /// For a listener's child initializer: takes a slot for `channel` (given back when it
    /// closes), or closes it at once when none is left, calling `report` (with the limit) at
    /// most once per 10 s. Returns whether the connection may be served.
    public func admit(_ channel: any Channel, report: (Int) -> Void) -> Bool {
        guard take() else {
            if shouldReport(now: NIODeadline.now().uptimeNanoseconds) { report(limit) }
            channel.close(promise: nil)
            return false
        }
        channel.closeFuture.whenComplete { _ in self.release() }
        return true
    }
}
