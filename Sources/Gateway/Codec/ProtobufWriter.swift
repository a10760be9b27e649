import NIOCore

/// Writes proto3 wire format (protobuf encoding guide) in field-number order, as protoc's
/// serializers and protobuf-c's `pack` do, so equal messages give equal bytes.
///
/// Responses are written directly instead of being built as protobuf-c structs and packed: a
/// response tree in C would need every string, sub-message and array malloc'd by hand and
/// freed field by field; this writes each byte once and owns nothing. The tests unpack the
/// output with protobuf-c and compare it with Python's serializer byte for byte.
///
/// The message is written into the `ByteBuffer` that goes out as the response body, behind 5
/// bytes left for gRPC's length prefix (`framed()` fills them in): no copy to frame it
/// (gateway/bench/copies.md, R3 and R4). No channel allocator is needed: the buffer is the
/// call's own, malloc'd once at `capacity` (and grown only if the message outgrows it).
struct ProtobufWriter {
    /// gRPC's prefix: compressed flag, 4-byte big-endian length.
    static let prefixLength = 5

    private var buffer: ByteBuffer

    /// `capacity`: the expected size of the message (without the prefix).
    init(capacity: Int = 64) {
        buffer = ByteBufferAllocator().buffer(capacity: Self.prefixLength + capacity)
        buffer.writeRepeatingByte(0, count: Self.prefixLength)
    }

    /// The message written so far (without the prefix).
    var count: Int { buffer.writerIndex - Self.prefixLength }

    /// The gRPC length-prefixed message: the prefix (flag 0, the length) set in the 5 bytes
    /// left for it, then the message. Mutating, so that the prefix is set in place (a copy of
    /// the buffer set would be copied on write); the buffer is returned as it is, and the
    /// writer is done with.
    mutating func framed() -> ByteBuffer {
        let length = UInt32(count)
        buffer.setInteger(UInt8(0), at: 0)
        buffer.setInteger(length, at: 1, endianness: .big)
        return buffer
    }

    private enum WireType: UInt64 {
        case varint = 0
        case lengthDelimited = 2
    }

    private mutating func tag(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | type.rawValue)
    }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }

    /// The bytes `varint(value)` takes.
    private static func varintSize(_ value: UInt64) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }

    /// An `int64` / `int32` field with explicit presence (`optional`, a oneof member): written
    /// even when 0. Negative values take ten bytes, sign-extended, for both types.
    mutating func int(_ field: Int, _ value: Int64) {
        tag(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// A plain proto3 integer: absent at 0.
    mutating func implicitInt(_ field: Int, _ value: Int64) {
        if value != 0 { int(field, value) }
    }

    mutating func lengthDelimited(_ field: Int, _ value: some Collection<UInt8>) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.count))
        buffer.writeBytes(value)
    }

    /// A `string` with explicit presence: written even when empty.
    mutating func string(_ field: Int, _ value: String) {
        tag(field, .lengthDelimited)
        varint(UInt64(value.utf8.count))
        buffer.writeString(value)
    }

    /// A plain proto3 string: absent when empty.
    mutating func implicitString(_ field: Int, _ value: String) {
        if !value.isEmpty { string(field, value) }
    }

    /// A sub-message (or one element of a repeated one), written in place; its length prefix
    /// is slid in front once its size is known (the sub-message moves up by the prefix's
    /// size, within the buffer).
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        tag(field, .lengthDelimited)
        let start = buffer.writerIndex
        body(&self)
        let length = buffer.writerIndex - start
        let size = Self.varintSize(UInt64(length))
        buffer.writeRepeatingByte(0, count: size)
        if length > 0 {
            _ = try! buffer.copyBytes(at: start, to: start + size, length: length)  // overlapping: a memmove
        }
        var v = UInt64(length)
        var at = start
        while v >= 0x80 {
            buffer.setInteger(UInt8(truncatingIfNeeded: v) | 0x80, at: at)
            v >>= 7
            at += 1
        }
        buffer.setInteger(UInt8(v), at: at)
    }
}
