import NIOCore

/// What `PipelinedHTTPHandler` tells `HTTP1Deadlines` (as user outbound events, which pass
/// the HTTP/1.1 codec on their way to the socket end of the pipeline).
public enum HTTP1RequestProgress: Sendable {
    /// A whole request head was decoded.
    case head
    /// The request's body ended.
    case end
}

/// The deadlines of an HTTP/1.1 connection, on raw bytes in front of NIO's codec: a request
/// head must be complete `requestHeadTimeout` after its first byte, a body
/// `requestBodyTimeout` after its head, and a connection with no bytes either way for
/// `idleTimeout` is closed. Timers, not NIO's `IdleStateHandler`: any read resets that, so a
/// client trickling one byte a second would never trip it (STACK-NOTES-2).
///
/// Known gap: bytes of a next (pipelined) request that arrived in the same read as the end of
/// the previous one start no head timer until more bytes come; the idle timeout bounds them.
public final class HTTP1Deadlines: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum Phase { case betweenRequests, head, body }

    private let limits: ConnectionLimits
    private var phase = Phase.betweenRequests
    private var requestTimer: Scheduled<Void>?
    private var idleTimer: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()

    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = .now()
        armIdle(context: context, at: lastActivity + limits.idleTimeout)
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        requestTimer?.cancel()
        idleTimer?.cancel()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        if phase == .betweenRequests {
            phase = .head
            arm(context: context, in: limits.requestHeadTimeout, what: "request head")
        }
        context.fireChannelRead(data)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = .now()
        context.write(data, promise: promise)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard let progress = event as? HTTP1RequestProgress else {
            return context.triggerUserOutboundEvent(event, promise: promise)
        }
        requestTimer?.cancel()
        requestTimer = nil
        switch progress {
        case .head:
            phase = .body
            arm(context: context, in: limits.requestBodyTimeout, what: "request body")
        case .end:
            phase = .betweenRequests
        }
        promise?.succeed(())
    }

    private func arm(context: ChannelHandlerContext, in delay: TimeAmount, what: String) {
        requestTimer?.cancel()
        requestTimer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard self != nil else { return }
            context.close(promise: nil)
        }
    }

    private func armIdle(context: ChannelHandlerContext, at deadline: NIODeadline) {
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            let due = self.lastActivity + self.limits.idleTimeout
            if NIODeadline.now() >= due {
                context.close(promise: nil)
            } else {
                self.armIdle(context: context, at: due)
            }
        }
    }
}
