internal import GRDB
import NIOConcurrencyHelpers

/// Counts the transactions committed on a SQLite store's writer connection, as SQLite's
/// commit hook reports them (GRDB's transaction observer): the proof that group commit is
/// one transaction, and a figure for diagnostics. Savepoints inside a transaction are not
/// commits; reads run on other connections and are not counted.
final class CommitCounter: TransactionObserver, Sendable {
    private let count = NIOLockedValueBox(0)

    var value: Int { count.withLockedValue { $0 } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { false }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { count.withLockedValue { $0 += 1 } }
    func databaseDidRollback(_ db: Database) {}
}

extension SQLiteTaskStore {
    /// Transactions committed since the store was opened (schema migrations not included).
    /// Each `write` call is at most one, however many commands it carries.
    public var committedTransactions: Int { commits.value }
}
