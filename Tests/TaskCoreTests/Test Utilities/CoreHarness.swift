import ContextModel
import Foundation
import GRDB
import Gateway
import GatewayHTTP
import NIOCore
import NIOPosix
@testable import TaskCore

/// A real task core on a real socket (port 0) over a real SQLite file in a fresh folder, or
/// over the in-memory store. Tests speak HTTP to it through `RawHTTPClient`.
///
/// With `front: .gateway`, the same tests talk to a real gateway in front of that core
/// instead (REST bridged through its batcher and pool, CONTEXT-SERVICES.md §2): the REST
/// conformance sweep of the gateway is the core's own test bodies, run against both.
final class CoreHarness: @unchecked Sendable {
    enum Storage: CustomStringConvertible, Sendable {
        case sqlite, memory, postgres
        /// The durable stores the API tests run against: SQLite, and PostgreSQL when the test
        /// command started a cluster (`PostgresTestServer`).
        static var durable: [Storage] { PostgresTestServer.isConfigured ? [.sqlite, .postgres] : [.sqlite] }
        var description: String { "\(self == .sqlite ? "SQLite" : self == .postgres ? "PostgreSQL" : "memory")" }
    }
    enum Front: CaseIterable, CustomStringConvertible {
        case core, gateway
        var description: String { self == .core ? "straight to the core" : "through the gateway" }
    }

    let directory: String
    let store: any TaskStore
    let storage: Storage
    /// The PostgreSQL database of this harness (dropped in `stop`).
    let database: String?
    let server: CoreServer
    let group: MultiThreadedEventLoopGroup
    /// The gateway in front, with `front: .gateway`.
    let gateway: (server: GatewayServer, service: ContextGateway)?
    /// Where tests send their requests: the gateway when there is one.
    var port: Int { gateway?.server.port ?? server.port }
    /// The core itself, whatever the front.
    var corePort: Int { server.port }
    var dataPath: String { directory + "/cs.sqlite" }

    static let base = RESTRoute.defaultBasePath

    init(_ storage: Storage = .sqlite, front: Front = .core, configure: (inout CoreConfiguration) -> Void = { _ in }) async throws {
        directory = try makeTemporaryDirectory()
        self.storage = storage
        switch storage {
        case .sqlite:
            store = try SQLiteTaskStore(.init(path: directory + "/cs.sqlite"))
            database = nil
        case .memory:
            store = InMemoryTaskStore()
            database = nil
        case .postgres:
            let config = try await PostgresTestServer.createDatabase()
            store = try await PostgresTaskStore.open(config)
            database = config.database
        }
        var config = CoreConfiguration()
        configure(&config)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        server = try await CoreServer.start(host: "127.0.0.1", port: 0,
                                            service: ContextService(store: store, configuration: config), group: group)
        switch front {
        case .core:
            gateway = nil
        case .gateway:
            // Configured as `gateway serve` configures it from the core's options.
            var gatewayConfig = ContextGateway.Configuration()
            gatewayConfig.basePath = config.basePath
            gatewayConfig.limits = config.limits
            gatewayConfig.authTokens = config.authTokens
            let service = ContextGateway(group: group, upstream: .init(host: "127.0.0.1", port: server.port),
                                         configuration: gatewayConfig)
            let gatewayServer = try await GatewayServer.start(host: "127.0.0.1", port: 0, service: service,
                                                              rest: GatewayHTTPService(gateway: service), group: group)
            gateway = (gatewayServer, service)
        }
    }

    func stop() async throws {
        if let gateway {
            await gateway.server.shutdown(grace: .seconds(1))
            await gateway.service.close(group: group)
        }
        await server.shutdown(grace: .seconds(1))
        try await store.close()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
        if let database { await PostgresTestServer.dropDatabase(database) }
    }

    /// Sets a service's id counters behind the store's back, as an operator could (to reach
    /// the 32-bit limit without two billion starts).
    func setCounters(serviceID: Int64, lastTaskID: Int64, lastStateID: Int64) async throws {
        let sql = "UPDATE services SET last_task_id = \(lastTaskID), last_state_id = \(lastStateID) WHERE service_id = \(serviceID)"
        switch storage {
        case .sqlite:
            let db = try DatabaseQueue(path: dataPath)
            try await db.write { try $0.execute(sql: sql) }
            try db.close()
        case .postgres:
            try await PostgresTestServer.execute(sql, database: database!)
        case .memory:
            (store as! InMemoryTaskStore).setCounters(serviceID: serviceID, lastStateID: lastStateID, lastTaskID: lastTaskID)
        }
    }

    /// One request on a fresh connection.
    func call(
        _ method: String, _ path: String, body: String? = nil, contentType: String? = "application/json",
        headers: [(String, String)] = []
    ) async throws -> RawHTTPClient.Response {
        let port = self.port
        let bytes = RawHTTPClient.request(method, Self.base + path, body: body, contentType: contentType, headers: headers)
        return try await detached {
            let client = try RawHTTPClient(port: port)
            try client.send(bytes)
            return try client.readResponse()
        }
    }

    /// Starts a service and returns its id.
    func startService(_ body: String = "{}", tenant: String? = nil) async throws -> Int64 {
        let r = try await call("POST", "/services/start", body: body, headers: tenant.map { [("ContactCenterId", $0)] } ?? [])
        guard r.status == 201, let id = try jsonInt(r.body, "service_id") else {
            throw RawHTTPClient.Failure(description: "start service failed: \(r)")
        }
        return id
    }
}

func makeTemporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "cs-test-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Reads one integer member of a JSON object body (tests only: Foundation is fine here).
func jsonInt(_ body: [UInt8], _ key: String) throws -> Int64? {
    let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
    return (object?[key] as? NSNumber)?.int64Value
}

func jsonInt(_ body: ByteBuffer, _ key: String) throws -> Int64? {
    try jsonInt(Array(body.readableBytesView), key)
}

func jsonObject(_ body: ByteBuffer) throws -> [String: Any] {
    try jsonObject(Array(body.readableBytesView))
}

func jsonObject(_ body: [UInt8]) throws -> [String: Any] {
    guard let o = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
        throw RawHTTPClient.Failure(description: "not a JSON object: \(String(decoding: body, as: UTF8.self))")
    }
    return o
}

extension CoreHarness {
    /// Runs `body` against a fresh core and always stops it.
    static func with(
        _ storage: Storage = .sqlite, front: Front = .core, configure: (inout CoreConfiguration) -> Void = { _ in },
        _ body: (CoreHarness) async throws -> Void
    ) async throws {
        let core = try await CoreHarness(storage, front: front, configure: configure)
        do {
            try await body(core)
        } catch {
            try? await core.stop()
            throw error
        }
        try await core.stop()
    }
}
