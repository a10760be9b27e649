/// Answers a connection holds that its client has not taken yet (issue 11, item 2): on HTTP/2,
/// response bodies waiting for the client's flow-control window; on HTTP/1.1, answers queued
/// behind a socket the client does not read. Counted per connection and in one
/// `ProcessByteBudget` for the process.
///
/// An answer of up to `smallAnswer` bytes is always taken: every write's answer is that small,
/// and a write's answer must not be replaced by an error (the write happened). Such answers are
/// bounded anyway, by the calls a connection may have in flight. A larger answer (a query's)
/// is taken only if it fits both budgets, or if it is the connection's only one and fits the
/// process's; otherwise the call gets RESOURCE_EXHAUSTED (REST: 503 `OverloadedException`)
/// instead, which is honest for a read. Pure bookkeeping, used on the connection's loop.
public struct AnswerBudget {
    public static let smallAnswer = 16 << 10

    public let maxBytes: Int
    public let process: ProcessByteBudget?
    public private(set) var held = 0

    public init(maxBytes: Int, process: ProcessByteBudget?) {
        self.maxBytes = maxBytes
        self.process = process
    }

    /// Counts an answer of `n` bytes if it may be held now: nil if not, else whether it was
    /// counted in the process's budget too (small answers are not: an atomic operation per
    /// call for bytes bounded otherwise is not worth it). Pass that back to `sent`.
    public mutating func admit(_ n: Int) -> Bool? {
        if n <= Self.smallAnswer {
            held += n
            return false
        }
        guard held == 0 || held + n <= maxBytes, process?.reserve(n) ?? true else { return nil }
        held += n
        return process != nil
    }

    /// `n` bytes of an answer went to the socket (or were dropped with their stream).
    public mutating func sent(_ n: Int, countedInProcess: Bool) {
        guard n > 0 else { return }
        held -= n
        if countedInProcess { process?.release(n) }
    }

    /// The message of the refusal.
    public func refusal(answerBytes: Int) -> String {
        "the answer (\(answerBytes) bytes) was not sent: \(held) bytes of earlier answers are waiting for this client to read them (budget \(maxBytes) bytes per connection, or the process's \(process?.maxBytes ?? 0))"
    }
}
