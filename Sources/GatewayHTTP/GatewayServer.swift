import GRPCServer
import HTTPServing
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL

/// The gateway's listening socket, one port for every client: HTTP/2 (h2c with prior
/// knowledge, what gRPC clients send) for native gRPC, and, with a `RESTResponder`, HTTP/1.1
/// too (`ProtocolDetector`) and every non-gRPC request on either (REST, gRPC-Web, health).
/// With a TLS context: TLS with ALPN `h2` and `http/1.1`. Keeps its connections so a
/// shutdown can drain them.
public final class GatewayServer: Sendable {
    public let localAddress: SocketAddress
    private let channel: any Channel
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let logger: Logger

    private init(channel: any Channel, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>, logger: Logger) {
        self.channel = channel
        self.localAddress = channel.localAddress!
        self.connections = connections
        self.logger = logger
    }

    public var port: Int { localAddress.port ?? 0 }

    /// A TLS context for `h2` from PEM files.
    public static func tlsContext(certificatePath: String, keyPath: String, http1: Bool = true) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificatePath).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tls.applicationProtocols = http1 ? ["h2", "http/1.1"] : ["h2"]  // RFC 9113 §3.2, RFC 7301
        tls.minimumTLSVersion = .tlsv12
        return try NIOSSLContext(configuration: tls)
    }

    /// `limits` hold the HTTP/1.1 side (and the connection timers); the HTTP/2 header limits
    /// are `configuration.http2`'s (`ServeCommand` sets both from one option).
    public static func start(
        host: String, port: Int, service: any GRPCService, rest: (any RESTResponder)? = nil, group: any EventLoopGroup,
        configuration: GRPCServerHandler.Configuration = .defaults, limits: ConnectionLimits = .defaults,
        tls: NIOSSLContext? = nil, slots: ConnectionSlots? = nil, logger: Logger = Logger(label: "cs.gateway")
    ) async throws -> GatewayServer {
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler { error, unreported in
                        logger.warning("cannot accept connections: pausing the listener", metadata: [
                            "error": "\(error)", "failed-since-last-report": "\(unreported)"])
                    })
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                if let slots, !slots.admit(channel, report: { limit in
                    logger.warning("connection limit reached: closing new connections", metadata: ["limit": "\(limit)"])
                }) {
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        try sync.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    guard let rest else {
                        // No detector: the HTTP/2 handler's own preface deadline covers the opening.
                        try sync.addHandler(GRPCServerHandler(service: service, configuration: configuration, logger: logger))
                        return
                    }
                    try sync.addHandler(ProtocolDetector(
                        http2: { GRPCServerHandler(service: service, rest: rest, configuration: configuration, logger: logger) },
                        http1: { PipelinedHTTPHandler(responder: rest, limits: limits, answers: configuration.processAnswerBudget,
                                                      admissions: configuration.admissions) },
                        limits: limits))
                }
            }
            .bind(host: host, port: port)
            .get()
        return GatewayServer(channel: channel, connections: connections, logger: logger)
    }

    /// Graceful shutdown: stop accepting, send every connection GOAWAY and let its streams
    /// finish (up to `grace`), then close what is left.
    public func shutdown(grace: TimeAmount = .seconds(10)) async {
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(GRPCServerHandler.Drain())
            connection.pipeline.fireUserInboundEventTriggered(PipelinedHTTPHandler.Drain())
        }
        let deadline = NIODeadline.now() + grace
        while !connections.withLockedValue({ $0.isEmpty }) && NIODeadline.now() < deadline {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        let left = connections.withLockedValue { Array($0.values) }
        if !left.isEmpty {
            logger.warning("closing connections still open after the drain", metadata: ["count": "\(left.count)"])
            for connection in left { try? await connection.close() }
        }
    }
}
