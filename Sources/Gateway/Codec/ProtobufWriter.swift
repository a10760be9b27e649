/// Writes proto3 wire format (protobuf encoding guide) in field-number order, as protoc's
/// serializers and protobuf-c's `pack` do, so equal messages give equal bytes.
///
/// Responses are written directly instead of being built as protobuf-c structs and packed: a
/// response tree in C would need every string, sub-message and array malloc'd by hand and
/// freed field by field; this writes each byte once and owns nothing. The tests unpack the
/// output with protobuf-c and compare it with Python's serializer byte for byte.
struct ProtobufWriter {
    var bytes: [UInt8] = []

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
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
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
        bytes.append(contentsOf: value)
    }

    /// A `string` with explicit presence: written even when empty.
    mutating func string(_ field: Int, _ value: String) {
        lengthDelimited(field, value.utf8)
    }

    /// A plain proto3 string: absent when empty.
    mutating func implicitString(_ field: Int, _ value: String) {
        if !value.isEmpty { string(field, value) }
    }

    /// A sub-message (or one element of a repeated one), written in place; its length prefix
    /// is slid in front once its size is known.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        tag(field, .lengthDelimited)
        let start = bytes.count
        body(&self)
        let length = bytes.count - start
        var prefix = ProtobufWriter()
        prefix.varint(UInt64(length))
        bytes.insert(contentsOf: prefix.bytes, at: start)
    }
}
