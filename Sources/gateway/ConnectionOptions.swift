import ArgumentParser
import HTTPServing

/// Limits every accepted connection is held to (README, "Limits and timeouts"): the gateway's
/// port and the core's, with the same defaults.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Largest request head, bytes: HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, enforced on the decoded list (stream reset beyond); HTTP/1.1: 431.")
    var maxHeaderListSize: Int = ConnectionLimits.defaults.maxHeaderListSize

    @Option(help: "Most header fields in one request head (as --max-header-list-size beyond).")
    var maxHeaderFields: Int = ConnectionLimits.defaults.maxHeaderFields

    func validate() throws {
        guard maxHeaderListSize >= 1024, maxHeaderListSize <= Int(UInt32.max), maxHeaderFields >= 16 else {
            throw ValidationError("--max-header-list-size must be at least 1024 and --max-header-fields at least 16")
        }
    }

    var limits: ConnectionLimits {
        var limits = ConnectionLimits()
        limits.maxHeaderListSize = maxHeaderListSize
        limits.maxHeaderFields = maxHeaderFields
        return limits
    }
}
