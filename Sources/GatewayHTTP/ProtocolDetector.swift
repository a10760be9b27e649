import GRPCServer
import HTTPServing
import NIOCore
import NIOHTTP1

/// One port for every client: the first bytes of a connection say which protocol it speaks.
/// The HTTP/2 connection preface (RFC 9113 §3.4, what gRPC clients and `curl
/// --http2-prior-knowledge` send first) goes to the nghttp2 handler; anything else is
/// HTTP/1.1 (NIO's codec, then `PipelinedHTTPHandler`). Over TLS the same rule applies after
/// the handshake, whichever ALPN protocol was chosen: a client that negotiated `h2` sends
/// the preface, one that negotiated `http/1.1` (or nothing) does not.
final class ProtocolDetector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private let makeHTTP2: () -> any ChannelHandler
    private let makeHTTP1: () -> any ChannelHandler
    private let limits: ConnectionLimits
    private var buffered: ByteBuffer?
    /// `limits.handshakeTimeout` from the moment this handler is in place (after accept; over
    /// TLS it covers the handshake too): a client that sends half a preface, or nothing, is
    /// closed when it passes.
    private var deadline: Scheduled<Void>?

    init(http2: @escaping () -> any ChannelHandler, http1: @escaping () -> any ChannelHandler,
         limits: ConnectionLimits = .defaults) {
        self.makeHTTP2 = http2
        self.makeHTTP1 = http1
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: limits.handshakeTimeout) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffered {
            self.buffered = nil
            buffered.writeBuffer(&incoming)
            incoming = buffered
        }
        switch Self.classify(incoming.readableBytesView) {
        case .undecided:
            buffered = incoming
        case .http2:
            switchTo(makeHTTP2(), http1: false, replaying: incoming, context: context)
        case .http1:
            switchTo(makeHTTP1(), http1: true, replaying: incoming, context: context)
        }
    }

    enum Verdict { case undecided, http2, http1 }

    /// HTTP/2 once the whole preface is there; HTTP/1.1 at the first byte that differs.
    static func classify(_ bytes: some Collection<UInt8>) -> Verdict {
        for (got, want) in zip(bytes, preface) where got != want {
            return .http1
        }
        return bytes.count >= preface.count ? .http2 : .undecided
    }

    private func switchTo(_ handler: any ChannelHandler, http1: Bool, replaying bytes: ByteBuffer, context: ChannelHandlerContext) {
        do {
            let sync = context.pipeline.syncOperations
            if http1 {
                try sync.addHandlers([HTTP1Deadlines(limits: limits),
                                      ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes,
                                                                            limitConfiguration: limits.http1Decoder)),
                                      HTTPResponseEncoder()], position: .after(self))
                // The codec's handlers are in place: the REST handler goes last.
                try sync.addHandler(handler, position: .last)
            } else {
                try sync.addHandler(handler, position: .after(self))
            }
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    typealias InboundOut = ByteBuffer

    /// A drain before the protocol is known: nothing is in flight, close.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GRPCServerHandler.Drain || event is PipelinedHTTPHandler.Drain {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
