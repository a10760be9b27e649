/// Reads protobuf wire format (protobuf encoding guide) field by field, for the few messages
/// read without protobuf-c: file descriptors (their names only) and reflection requests. Never
/// traps on malformed input: `next()` throws instead.
struct ProtobufReader {
    struct Malformed: Error {}

    enum Value {
        case varint(UInt64)
        /// The field's bytes, as a range of the input.
        case bytes(Range<Int>)
        /// fixed32 and fixed64 fields: skipped.
        case fixed
    }

    let bytes: [UInt8]
    private var index: Int
    private let end: Int

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        index = range?.lowerBound ?? 0
        end = range?.upperBound ?? bytes.count
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws(Malformed) -> (field: Int, value: Value)? {
        guard index < end else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0, field <= 536_870_911 else { throw Malformed() }
        switch key & 7 {
        case 0:
            return (field, .varint(try varint()))
        case 1:
            try skip(8)
            return (field, .fixed)
        case 2:
            let length = try varint()
            guard length <= UInt64(end - index) else { throw Malformed() }
            let start = index
            index += Int(length)
            return (field, .bytes(start..<index))
        case 5:
            try skip(4)
            return (field, .fixed)
        default:
            throw Malformed()  // groups (3, 4) are not proto3; 6 and 7 do not exist
        }
    }

    private mutating func skip(_ n: Int) throws(Malformed) {
        guard end - index >= n else { throw Malformed() }
        index += n
    }

    private mutating func varint() throws(Malformed) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < end, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw Malformed()
    }

    /// A string field's text; invalid UTF-8 is malformed (proto3 strings are UTF-8).
    func string(_ range: Range<Int>) throws(Malformed) -> String {
        guard let text = String(validating: bytes[range], as: UTF8.self) else { throw Malformed() }
        return text
    }
}
