import ArgumentParser
import HTTPServing

/// Limits every accepted connection is held to (README, "Limits and timeouts"): the gateway's
/// port and the core's, with the same defaults.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Largest request head, bytes: HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, enforced on the decoded list (stream reset beyond); HTTP/1.1: 431.")
    var maxHeaderListSize: Int = ConnectionLimits.defaults.maxHeaderListSize

    @Option(help: "Most header fields in one request head (as --max-header-list-size beyond).")
    var maxHeaderFields: Int = ConnectionLimits.defaults.maxHeaderFields

    @Option(help: "From accept to the protocol's opening (TLS, HTTP/2 preface and first SETTINGS, or the first HTTP/1.1 bytes), milliseconds; then close.")
    var handshakeTimeoutMillis: Int64 = ConnectionLimits.defaults.handshakeTimeout.nanoseconds / 1_000_000

    @Option(help: "HTTP/1.1: from a request head's first byte to its end, milliseconds (trickling does not extend it); then close.")
    var requestHeadTimeoutMillis: Int64 = ConnectionLimits.defaults.requestHeadTimeout.nanoseconds / 1_000_000

    @Option(help: "HTTP/1.1: from a request head to the end of its body, milliseconds; then close.")
    var requestBodyTimeoutMillis: Int64 = ConnectionLimits.defaults.requestBodyTimeout.nanoseconds / 1_000_000

    @Option(help: "A connection with nothing in flight this long is closed (HTTP/2: GOAWAY first), seconds.")
    var idleTimeoutSeconds: Int64 = ConnectionLimits.defaults.idleTimeout.nanoseconds / 1_000_000_000

    @Option(help: "Answer bytes one connection may hold for a client that does not take them (HTTP/2 window, or socket); a larger answer that does not fit gets RESOURCE_EXHAUSTED / 503.")
    var maxBufferedAnswerBytesPerConnection: Int = ConnectionLimits.defaults.maxBufferedAnswerBytesPerConnection

    @Option(help: "Answers waiting and none taken by the client this long: close the connection (HTTP/2: GOAWAY ENHANCE_YOUR_CALM first), milliseconds.")
    var answerStallTimeoutMillis: Int64 = ConnectionLimits.defaults.answerStallTimeout.nanoseconds / 1_000_000

    func validate() throws {
        guard maxBufferedAnswerBytesPerConnection >= 64 << 10, answerStallTimeoutMillis > 0 else {
            throw ValidationError("--max-buffered-answer-bytes-per-connection must be at least 65536 and --answer-stall-timeout-millis positive")
        }
        guard handshakeTimeoutMillis > 0, requestHeadTimeoutMillis > 0, requestBodyTimeoutMillis > 0, idleTimeoutSeconds > 0 else {
            throw ValidationError("the connection timeouts must be positive")
        }
        guard maxHeaderListSize >= 1024, maxHeaderListSize <= Int(UInt32.max), maxHeaderFields >= 16 else {
            throw ValidationError("--max-header-list-size must be at least 1024 and --max-header-fields at least 16")
        }
    }

    var limits: ConnectionLimits {
        var limits = ConnectionLimits()
        limits.maxHeaderListSize = maxHeaderListSize
        limits.maxHeaderFields = maxHeaderFields
        limits.handshakeTimeout = .milliseconds(handshakeTimeoutMillis)
        limits.requestHeadTimeout = .milliseconds(requestHeadTimeoutMillis)
        limits.requestBodyTimeout = .milliseconds(requestBodyTimeoutMillis)
        limits.idleTimeout = .seconds(idleTimeoutSeconds)
        limits.maxBufferedAnswerBytesPerConnection = maxBufferedAnswerBytesPerConnection
        limits.answerStallTimeout = .milliseconds(answerStallTimeoutMillis)
        return limits
    }
}
