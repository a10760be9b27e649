/// Refuses a request whose `google.protobuf.Struct` nests deeper than the contract allows,
/// BEFORE protobuf-c sees it.
///
/// protobuf-c 1.4 unpacks sub-messages by plain recursion with no depth limit, about 1 KiB of C
/// stack per level, and Struct → FieldsEntry → Value → Struct costs three levels for every six
/// bytes of input: a request of a few tens of KiB would overflow an event loop thread's stack.
/// So this walks the wire format along the only unbounded path of our messages (`extensions`,
/// then Struct/ListValue/Value) with an explicit stack, and stops at the limit the REST side has
/// (`JSONLimits.maxDepth`; the extensions object counts as depth 1, like the body object its
/// members join). Everything else is left to protobuf-c: bytes this walk cannot follow make it
/// answer `false`, and protobuf-c then refuses them.
enum StructDepthGuard {
    /// Whether a Struct in field `field` of the message in `bytes` nests deeper than `limit`.
    static func exceeds(_ bytes: UnsafeRawBufferPointer, field: UInt64, limit: Int) -> Bool {
        // The top level is read without allocating: most requests carry no Struct at all.
        var reader = WireReader(bytes: bytes, position: 0)
        while reader.position < bytes.count {
            guard let key = reader.varint() else { return false }
            if key == field << 3 | 2 {
                guard let length = reader.length(within: bytes.count) else { return false }
                let end = reader.position + length
                if structExceeds(bytes, from: reader.position, to: end, limit: limit) { return true }
                reader.position = end
            } else if !reader.skip(wireType: key & 7, within: bytes.count) {
                return false
            }
        }
        return false
    }

    private enum Kind { case structValue, fieldsEntry, value, listValue }

    private static func structExceeds(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int, limit: Int) -> Bool {
        var stack: [(kind: Kind, end: Int)] = [(.structValue, end)]
        var depth = 1  // Struct and ListValue frames on the stack: the JSON nesting
        if depth > limit { return true }
        var reader = WireReader(bytes: bytes, position: start)
        while true {
            let top = stack[stack.count - 1]
            if reader.position == top.end {
                if top.kind == .structValue || top.kind == .listValue { depth -= 1 }
                stack.removeLast()
                if stack.isEmpty { return false }
                continue
            }
            guard let key = reader.varint(), reader.position < top.end else { return false }
            let next: Kind?
            switch (top.kind, key) {
            case (.structValue, 1 << 3 | 2): next = .fieldsEntry  // Struct.fields
            case (.fieldsEntry, 2 << 3 | 2): next = .value        // FieldsEntry.value
            case (.value, 5 << 3 | 2): next = .structValue        // Value.struct_value
            case (.value, 6 << 3 | 2): next = .listValue          // Value.list_value
            case (.listValue, 1 << 3 | 2): next = .value          // ListValue.values
            default: next = nil
            }
            if let next {
                guard let length = reader.length(within: top.end) else { return false }
                if next == .structValue || next == .listValue {
                    depth += 1
                    if depth > limit { return true }
                }
                stack.append((next, reader.position + length))
            } else if !reader.skip(wireType: key & 7, within: top.end) {
                return false
            }
        }
    }
}

/// Just enough of the protobuf wire format to step over fields.
private struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var position: Int

    mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while position < bytes.count && shift < 64 {
            let b = bytes[position]
            position += 1
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
        }
        return nil
    }

    /// A length prefix that fits before `end`.
    mutating func length(within end: Int) -> Int? {
        guard let length = varint(), position <= end, length <= UInt64(end - position) else { return nil }
        return Int(length)
    }

    /// Steps over one field's value; false when it does not fit before `end`.
    mutating func skip(wireType: UInt64, within end: Int) -> Bool {
        switch wireType {
        case 0: guard varint() != nil else { return false }
        case 1: position += 8
        case 2: guard let length = length(within: end) else { return false }; position += length
        case 5: position += 4
        default: return false  // groups (3, 4) and reserved wire types: protobuf-c decides
        }
        return position <= end
    }
}
