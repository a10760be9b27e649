import Logging

/// Deletes expired idempotency keys in the background (README, "Exactly once"): every
/// `interval`, in chunks of `chunk` rows with a pause between chunks, so a large backlog
/// never holds the store's writer for long (a chunk of 1,000 is one short transaction).
/// Expired keys are ignored by every look-up anyway: purging only bounds the table.
public final class KeyPurger: Sendable {
    private let task: Task<Void, Never>

    public init(store: any TaskStore, interval: Duration = .seconds(60), chunk: Int = 1000,
                pause: Duration = .milliseconds(50), logger: Logger = Logger(label: "cs.core.keys")) {
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                var total = 0
                while !Task.isCancelled {
                    do {
                        let n = try await store.purgeExpiredKeys(limit: chunk)
                        total += n
                        if n < chunk { break }
                        try? await Task.sleep(for: pause)
                    } catch {
                        logger.warning("purging expired idempotency keys failed; next try later",
                                       metadata: ["error": "\(error)"])
                        break
                    }
                }
                if total > 0 { logger.debug("purged expired idempotency keys", metadata: ["count": "\(total)"]) }
            }
        }
    }

    /// Stops the purging (before the store closes).
    public func stop() async {
        task.cancel()
        await task.value
    }
}
