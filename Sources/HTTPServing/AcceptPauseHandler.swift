import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// On a listening socket: when `accept` fails for lack of descriptors or memory (EMFILE,
/// ENFILE, ENOBUFS, ENOMEM), stop accepting for `pause`, then try again. Without it the
/// listener stays readable, every event-loop turn retries the failing accept and the loop
/// spins at 100% CPU until some connection closes (STACK-NOTES-2: 3.0 CPU-s per 3 s at an fd
/// limit of 48; NIO's own `AcceptBackoffHandler` leaves `readPending` set and spins as well).
/// Turning `autoRead` off unregisters the read interest at once; turning it back on reads
/// again. The connections already accepted are served throughout.
///
/// `report` is called at most once per `reportInterval`, with the error and how many failed
/// accepts went unreported before it (a log line per failure would be a flood of its own).
public final class AcceptPauseHandler: ChannelInboundHandler {
    public typealias InboundIn = NIOAny

    public static let defaultPause = TimeAmount.milliseconds(500)

    private let pause: TimeAmount
    private let reportInterval: TimeAmount
    private let report: (_ error: IOError, _ unreported: Int) -> Void
    private var paused = false
    private var lastReport: NIODeadline?
    private var unreported = 0

    public init(pause: TimeAmount = defaultPause, reportInterval: TimeAmount = .seconds(10),
                report: @escaping (_ error: IOError, _ unreported: Int) -> Void) {
        self.pause = pause
        self.reportInterval = reportInterval
        self.report = report
    }

    /// The accept errors that mean "out of resources, try later" (accept(2)).
    static func isResourceExhaustion(_ errno: Int32) -> Bool {
        errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let ioError = error as? IOError, Self.isResourceExhaustion(ioError.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        let now = NIODeadline.now()
        if let lastReport, now < lastReport + reportInterval {
            unreported += 1
        } else {
            report(ioError, unreported)
            lastReport = now
            unreported = 0
        }
        guard !paused else { return }
        paused = true
        let channel = context.channel
        channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [weak self] in
            self?.paused = false
            if channel.isActive {
                channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            }
        }
    }
}
