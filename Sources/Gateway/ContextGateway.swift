import ContextModel
import GatewayHTTP2
import Logging
import NIOCore

/// The gRPC service of the gateway: each call is decoded and validated (`Codec`), sent to
/// the task core as its canonical REST call through the event loop's own upstream pool, and
/// the core's answer is mapped back (`Codec.encodeResponse`, or a status through the one
/// HTTP ⇄ gRPC table of `GRPCStatus`). Everything happens on the connection's event loop.
public final class ContextGateway: GRPCService {
    public struct Configuration: Sendable {
        /// Where the core serves the API.
        public var basePath = RESTRoute.defaultBasePath
        /// The core's body limits, applied to extensions before anything is sent.
        public var limits = JSONLimits.defaults
        public init() {}
    }

    /// One pool per event loop, each touched only on its own loop (`handle` runs there), so
    /// sharing the table across threads is safe: it is never mutated after `init`.
    private struct Pools: @unchecked Sendable {
        var byLoop: [ObjectIdentifier: UpstreamPool]
    }

    private let pools: Pools
    private let configuration: Configuration
    private let logger: Logger

    public init(group: any EventLoopGroup, upstream: UpstreamPool.Configuration, configuration: Configuration = .init(),
                logger: Logger = Logger(label: "cs.gateway")) {
        var byLoop: [ObjectIdentifier: UpstreamPool] = [:]
        for loop in group.makeIterator() {
            byLoop[ObjectIdentifier(loop)] = UpstreamPool(eventLoop: loop, configuration: upstream, logger: logger)
        }
        self.pools = Pools(byLoop: byLoop)
        self.configuration = configuration
        self.logger = logger
    }

    public func serves(path: String) -> Bool {
        RPCMethod(path: path) != nil
    }

    public func handle(_ request: GRPCRequest, responder: GRPCResponder, eventLoop: any EventLoop) {
        guard let method = RPCMethod(path: request.path), let pool = pools.byLoop[ObjectIdentifier(eventLoop)] else {
            responder.fail(GRPCStatus(code: .unimplemented, message: "unknown method \(request.path)", exception: nil))
            return
        }
        switch method {
        case .healthCheck:
            return healthCheck(request, responder: responder, pool: pool)
        case .healthWatch:
            // Server streaming is not served; the health protocol lets Watch be unimplemented.
            return responder.fail(GRPCStatus(code: .unimplemented, message: "Watch is not served; use Check", exception: nil))
        default:
            break
        }
        let call: UpstreamCall
        do {
            call = try request.message.withUnsafeReadableBytes { bytes throws(GRPCStatus) in
                try Codec.decodeRequest(method, bytes, limits: configuration.limits)
            }
        } catch {
            return responder.fail(error)
        }
        let upstream = UpstreamRequest(call.route, basePath: configuration.basePath, tenant: request.tenant,
                                       authorization: request.authorization, body: call.body)
        pool.send(upstream, deadline: request.deadline).assumeIsolated().whenComplete { result in
            guard responder.isActive else { return }  // timed out or cancelled meanwhile
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                do throws(GRPCStatus) {
                    responder.succeed(try Codec.encodeResponse(method, location: response.location, body: response.body))
                } catch {
                    responder.fail(error)
                }
            case .success(let response):
                responder.fail(GRPCStatus(response.contextError))
            case .failure(UpstreamError.deadlineExceeded):
                responder.fail(GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded before the call was sent", exception: nil))
            case .failure(let error):
                let message = (error as? UpstreamError).map { if case .unavailable(let m) = $0 { m } else { "\($0)" } } ?? "\(error)"
                responder.fail(GRPCStatus(code: .unavailable, message: message, exception: "OverloadedException"))
            }
        }
    }

    /// grpc.health.v1.Health/Check: SERVING when the task core can be reached. The empty
    /// service name and this package's service are known; any other is NOT_FOUND (health
    /// checking protocol).
    private func healthCheck(_ request: GRPCRequest, responder: GRPCResponder, pool: UpstreamPool) {
        let service: String
        do {
            service = try request.message.withUnsafeReadableBytes { bytes throws(GRPCStatus) in
                try Codec.decodeHealthCheckRequest(bytes)
            }
        } catch {
            return responder.fail(error)
        }
        guard service.isEmpty || service == "genesys.cs.v1.ContextServices" else {
            return responder.fail(GRPCStatus(code: .notFound, message: "unknown service \(service)", exception: nil))
        }
        pool.isReachable().assumeIsolated().whenSuccess { reachable in
            guard responder.isActive else { return }
            // HealthCheckResponse { status = 1 (SERVING) | 2 (NOT_SERVING) }: field 1, varint.
            responder.succeed([0x08, reachable ? 1 : 2])
        }
    }

    /// Closes every upstream connection.
    public func close(group: any EventLoopGroup) async {
        for loop in group.makeIterator() {
            guard let pool = pools.byLoop[ObjectIdentifier(loop)] else { continue }
            try? await loop.submit { pool.close() }.get()
        }
    }
}
