import ContextModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// What a core said, on a new connection, about the store it serves (`GET {base}/store`).
public enum StoreAnswer: Sendable, Equatable, CustomStringConvertible {
    /// Its store's identity (`{"store_id":"…"}`).
    case identified(String)
    /// A core without the endpoint (a vendor core: any 4xx, or 501). Such cores are taken to
    /// share one store only with each other: they cannot say otherwise.
    case anonymous

    public var description: String {
        switch self {
        case .identified(let id): id
        case .anonymous: "(none: a core without GET /store)"
        }
    }
}

/// Keeps every upstream connection of a gateway on cores of one store. Two cores on separate
/// stores (two SQLite files, two databases) both issue service 1, 2, 3…: a gateway that
/// spread calls over both would cross-wire customers' data. The first store seen (at start,
/// `ContextGateway.verifyStores`) is the gateway's; every new connection shows its core's
/// store before it carries a call (`UpstreamPool`), and a core of another store is ejected.
/// Shared by the pools of every event loop; consulted once per new connection.
public final class StoreIdentityGuard: Sendable {
    private struct Expected {
        var answer: StoreAnswer
        var address: String
    }

    private let expected = NIOLockedValueBox<Expected?>(nil)

    public init() {}

    /// The store this gateway serves, once known.
    public var store: StoreAnswer? { expected.withLockedValue { $0?.answer } }

    /// Whether a core at `address` that answered `answer` may carry calls. The first answer
    /// sets the gateway's store; a later one that differs is refused with the address and
    /// store of the core that set it.
    public func admit(address: String, answer: StoreAnswer) -> (address: String, answer: StoreAnswer)? {
        expected.withLockedValue { expected in
            guard let known = expected else {
                expected = Expected(answer: answer, address: address)
                return nil
            }
            return known.answer == answer ? nil : (known.address, known.answer)
        }
    }
}

extension UpstreamPool {
    public enum HandshakeError: Error, CustomStringConvertible {
        case unexpected(status: Int)
        case malformed
        case noAnswer

        public var description: String {
            switch self {
            case .unexpected(let status): "GET /store answered HTTP \(status)"
            case .malformed: "GET /store answered a body without a store_id"
            case .noAnswer: "GET /store got no answer in time"
            }
        }
    }

    /// The request every new connection sends first.
    static func storeRequest(basePath: String) -> UpstreamRequest {
        UpstreamRequest(method: .GET, target: String(RESTRoute.trimmedBase(basePath)) + "/store")
    }

    /// Whether a core's answer to `GET {base}/store` says it keeps idempotency keys.
    static func keepsKeys(_ response: UpstreamResponse) -> Bool {
        guard response.status == 200, let members = try? StrictJSON.readObject(response.body) else { return false }
        return members.contains { m in
            if m.key == "idempotency", case .bool(true) = m.value { return true }
            return false
        }
    }

    /// Reads a core's answer to `GET {base}/store`.
    static func storeAnswer(_ response: UpstreamResponse) throws(HandshakeError) -> StoreAnswer {
        switch response.status {
        case 200:
            guard let members = try? StrictJSON.readObject(response.body) else { throw .malformed }
            for m in members where m.key == "store_id" {
                if case .string(let id) = m.value, !id.isEmpty { return .identified(id) }
            }
            throw .malformed
        case 400..<500, 501:
            // Not ours: 404 or 405 for an unknown path, 401 where credentials are needed
            // everywhere, 501 from a server that serves no GET at all.
            return .anonymous
        default:
            throw .unexpected(status: response.status)
        }
    }

    /// Asks the core at `host:port` which store it serves, on a connection of its own
    /// (start-up check).
    public static func askStore(
        host: String, port: Int, basePath: String, eventLoop: any EventLoop, timeout: TimeAmount
    ) -> EventLoopFuture<StoreAnswer> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler(hostHeader: "\(host):\(port)"))
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                let answer = handshake(on: channel, basePath: basePath, timeout: timeout)
                answer.whenComplete { _ in channel.close(promise: nil) }
                return answer
            }
    }

    /// Sends `GET {base}/store` on a fresh connection and reads the answer, within `timeout`.
    static func handshake(on channel: any Channel, basePath: String, timeout: TimeAmount) -> EventLoopFuture<StoreAnswer> {
        handshakeWithKeys(on: channel, basePath: basePath, timeout: timeout).map(\.store)
    }

    /// The same, and whether the core keeps idempotency keys.
    static func handshakeWithKeys(
        on channel: any Channel, basePath: String, timeout: TimeAmount
    ) -> EventLoopFuture<(store: StoreAnswer, keepsKeys: Bool)> {
        let promise = channel.eventLoop.makePromise(of: UpstreamResponse.self)
        // Closing fails the promise (the connection handler fails what waits on it).
        let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        channel.writeAndFlush((storeRequest(basePath: basePath), promise), promise: nil)
        return promise.futureResult.flatMapThrowing { response in
            timer.cancel()
            return (try storeAnswer(response), keepsKeys(response))
        }
    }
}
