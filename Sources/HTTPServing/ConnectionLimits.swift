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
