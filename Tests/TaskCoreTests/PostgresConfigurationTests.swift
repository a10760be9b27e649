import Testing
@testable import TaskCore

/// `--store postgres://…` as a value: what is read from the URL, and what is refused.
@Suite("PostgreSQL store configuration")
struct PostgresConfigurationTests {
    @Test("A full URL: user, host, port, database, sslmode; the password comes from elsewhere")
    func fullURL() throws {
        let c = try PostgresTaskStore.Configuration.parse(url: "postgres://cs_core@db.internal:6432/taskcore?sslmode=require",
                                                          password: "from-env")
        #expect(c.username == "cs_core")
        #expect(c.host == "db.internal")
        #expect(c.port == 6432)
        #expect(c.database == "taskcore")
        #expect(c.tls == .require)
        #expect(c.password == "from-env")
        #expect(!c.description.contains("from-env"), "never the password in logs")
    }

    @Test("Defaults: port 5432, user postgres, sslmode prefer; postgresql:// too")
    func defaults() throws {
        let c = try PostgresTaskStore.Configuration.parse(url: "postgresql://localhost/cs", password: nil)
        #expect(c.port == 5432)
        #expect(c.username == "postgres")
        #expect(c.tls == .prefer)
        #expect(c.password == nil)
    }

    @Test("Refused, each with a message naming what to change", arguments: [
        ("postgres://u:secret@h/db", "CS_STORE_PASSWORD"),
        ("mysql://u@h/db", "postgres://"),
        ("postgres://u@h/", "name one database"),
        ("postgres://u@h/a/b", "name one database"),
        ("postgres://u@h/db?sslmode=maybe", "sslmode"),
        ("postgres://u@h/db?application_name=x", "unknown parameter"),
        ("postgres:///db", "no host"),
    ])
    func refused(url: String, says: String) {
        do {
            _ = try PostgresTaskStore.Configuration.parse(url: url, password: nil)
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.description.contains(says), "\(url): \(error.description)")
        }
    }
}
