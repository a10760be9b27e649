import NIOCore
import NIOHTTP1

/// Limits every connection of the gateway and the core is held to, whatever it speaks, built
/// once at start-up. The numbers are the defaults of the command line (README, "Limits and
/// timeouts").
public struct ConnectionLimits: Sendable, Equatable {
    /// Largest request head, bytes: HTTP/2 counts the decoded header list as RFC 9113
    /// §10.5.1 does (name + value + 32 per field) and announces it in
    /// SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1 counts NIO's way (names and values). 16 KiB:
    /// twice grpc-core's 8 KiB default, a fifth of NIO's own 80 KiB.
    public var maxHeaderListSize = 16 << 10
    /// Most header fields in one request head (a few dozen is what real clients send).
    public var maxHeaderFields = 256
    /// From accept to a known protocol with its opening done: TLS handshake, the first bytes
    /// (HTTP/2 preface or an HTTP/1.1 request line), and on HTTP/2 the client's first SETTINGS.
    public var handshakeTimeout = TimeAmount.seconds(10)
    /// HTTP/1.1: from the first byte of a request head to its end. Trickling bytes do not
    /// extend it (a timer, not an idle check).
    public var requestHeadTimeout = TimeAmount.seconds(10)
    /// HTTP/1.1: from a request head to the end of its body: a 1 MiB body must arrive at
    /// ≥ 17 KiB/s on average.
    public var requestBodyTimeout = TimeAmount.seconds(60)
    /// A connection with nothing in flight (HTTP/2: no open stream; HTTP/1.1: no bytes either
    /// way) for this long is closed (HTTP/2: GOAWAY first).
    public var idleTimeout = TimeAmount.minutes(5)
    /// Answer bytes one connection may hold for a client that does not take them
    /// (`AnswerBudget`): HTTP/2 bodies waiting for its window, HTTP/1.1 answers queued behind
    /// its socket. A larger answer that does not fit gets RESOURCE_EXHAUSTED (REST: 503).
    public var maxBufferedAnswerBytesPerConnection = 16 << 20
    /// Answers waiting and none taken by the client for this long: the connection is closed
    /// (HTTP/2: GOAWAY ENHANCE_YOUR_CALM first).
    public var answerStallTimeout = TimeAmount.seconds(30)

    public init() {}
    public static var defaults: ConnectionLimits { ConnectionLimits() }

    /// NIO's HTTP/1.1 decoder held to these limits: over them it fails with
    /// `HTTPParserError.headerOverflow`, which `PipelinedHTTPHandler` answers with 431.
    public var http1Decoder: NIOHTTPDecoderLimitConfiguration {
        var config = NIOHTTPDecoderLimitConfiguration()
        config.maxHeaderListSize = maxHeaderListSize
        config.maxHeaderFieldSize = maxHeaderListSize
        config.maxHeaderFieldCount = maxHeaderFields
        return config
    }
}
