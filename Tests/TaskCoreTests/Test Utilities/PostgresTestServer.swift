import Foundation
import Logging
import PostgresNIO
@testable import TaskCore

/// The throw-away PostgreSQL cluster that `gateway/scripts/test.sh` starts
/// (`gateway/scripts/pg-cluster.sh`): `CS_TEST_POSTGRES` is its admin URL. Every test gets a
/// database of its own, dropped afterwards.
enum PostgresTestServer {
    static var adminURL: String? { ProcessInfo.processInfo.environment["CS_TEST_POSTGRES"] }

    /// Whether the PostgreSQL variants of the store and API tests run. CI always sets it
    /// (`TaskStoreTests.postgresConfiguredInCI` fails otherwise).
    static var isConfigured: Bool { adminURL != nil }

    static func adminConfiguration() throws -> PostgresTaskStore.Configuration {
        guard let url = adminURL else {
            throw Failure("CS_TEST_POSTGRES is not set: run gateway/scripts/test.sh, or eval \"$(bash gateway/scripts/pg-cluster.sh start)\"")
        }
        return try PostgresTaskStore.Configuration.parse(url: url, password: nil)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// A fresh, empty database; its store configuration.
    static func createDatabase() async throws -> PostgresTaskStore.Configuration {
        var config = try adminConfiguration()
        let name = "cs_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await execute("CREATE DATABASE \(name)", database: config.database)
        config.database = name
        config.tls = .disable
        // Generous: the suite runs tests in parallel on 2 CPUs, and these tests check
        // answers, not the time limit (test_scale_out.py checks that one).
        config.operationTimeout = .seconds(20)
        // Dozens of stores open at once (tests run in parallel): a few connections each keep
        // the cluster under its max_connections.
        config.maxConnections = 4
        return config
    }

    static func dropDatabase(_ name: String) async {
        guard let admin = try? adminConfiguration() else { return }
        try? await execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", database: admin.database)
    }

    /// Runs SQL text (no binds) on `database` over a connection of its own: tests change
    /// counters and read tables behind the store's back, as an operator could.
    static func execute(_ sql: String, database: String) async throws {
        _ = try await rows(sql, database: database)
    }

    /// The rows of one query, each column read as text (`::text` in the SQL where needed).
    static func rows(_ sql: String, database: String) async throws -> [[String?]] {
        let admin = try adminConfiguration()
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: admin.host, port: admin.port, username: admin.username, password: admin.password,
                                 database: database, tls: .disable),
            id: 1, logger: Logger(label: "cs.test.postgres"))
        do {
            var out: [[String?]] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "cs.test.postgres")) {
                var values: [String?] = []
                for cell in row {
                    values.append(try cell.decode(String?.self))
                }
                out.append(values)
            }
            try await connection.close()
            return out
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
