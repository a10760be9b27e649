import NIOCore

/// One response message as it goes on the wire: a `ByteBuffer` whose first 5 readable bytes
/// are gRPC's length prefix (PROTOCOL-HTTP2.md, "Length-Prefixed-Message": compressed flag 0,
/// then the length, big-endian) and whose rest is the message. An encoder writes the message
/// once, behind 5 bytes it left for the prefix, and the buffer becomes the stream's response
/// body as it is: no copy to frame it (gateway/bench/copies.md, R4).
public struct GRPCResponseMessage: Sendable, Equatable, ExpressibleByArrayLiteral {
    /// The prefix's length.
    public static let prefixLength = 5

    /// The prefix, then the message.
    public let framed: ByteBuffer

    /// `framed` holds the prefix and the message already (e.g. `ProtobufWriter.framed()`).
    public init(framed: ByteBuffer) {
        precondition(framed.readableBytes >= Self.prefixLength, "a framed message starts with its 5-byte prefix")
        assert(framed.getInteger(at: framed.readerIndex, as: UInt8.self) == 0
               && framed.getInteger(at: framed.readerIndex + 1, endianness: .big, as: UInt32.self)
               == UInt32(framed.readableBytes - Self.prefixLength),
               "the prefix does not announce the message behind it")
        self.framed = framed
    }

    /// Frames `message`, copying it (small answers: health, tests).
    public init(_ message: some Collection<UInt8>) {
        var buffer = ByteBufferAllocator().buffer(capacity: Self.prefixLength + message.count)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.count), endianness: .big)
        buffer.writeBytes(message)
        framed = buffer
    }

    public init(arrayLiteral bytes: UInt8...) {
        self.init(bytes)
    }

    /// The message without its prefix (a slice: no copy).
    public var message: ByteBuffer {
        framed.getSlice(at: framed.readerIndex + Self.prefixLength, length: framed.readableBytes - Self.prefixLength)!
    }

    /// The bytes on the wire: prefix and message.
    public var count: Int { framed.readableBytes }
}
