internal import CProtobufC
import ContextModel
internal import ContextProto

/// Writes a `google.protobuf.Struct` as the members of a JSON object (DESIGN.md §4): integral
/// doubles within ±2^53 as integers, other finite doubles in the shortest form that round-trips
/// (spelled as ECMAScript and RFC 8785 spell numbers), NaN and ±Infinity refused, map entries in
/// the order they arrived on the wire.
struct StructJSON {
    /// `"k":v` pairs joined by `,`, no braces: the bytes the members' ranges point into.
    var bytes: [UInt8] = []
    /// The top-level members, as `StrictJSON.readObject` would describe them.
    var members: [JSONMember] = []
    let method: RPCMethod
    let maxDepth: Int

    init(method: RPCMethod, maxDepth: Int = JSONLimits.defaults.maxDepth) {
        self.method = method
        self.maxDepth = maxDepth
    }

    /// Renders the top-level Struct: its entries become members of the body object (depth 1).
    mutating func render(_ object: UnsafePointer<Google__Protobuf__Struct>) throws(GRPCStatus) {
        let entries = try self.entries(object)
        members.reserveCapacity(entries.count)
        for (key, value) in entries {
            if !bytes.isEmpty { bytes.append(UInt8(ascii: ",")) }
            let keyStart = bytes.count
            JSONWriter.appendString(key, to: &bytes)
            let rawKey = keyStart..<bytes.count
            bytes.append(UInt8(ascii: ":"))
            let valueStart = bytes.count
            let scalar = try append(value, path: key, depth: 1)
            members.append(JSONMember(key: key, rawKey: rawKey, rawValue: valueStart..<bytes.count, value: scalar))
        }
    }

    /// The entries in wire order; a key sent twice keeps its last value (protobuf's rule for
    /// maps), at the place of its last occurrence.
    private func entries(_ object: UnsafePointer<Google__Protobuf__Struct>) throws(GRPCStatus) -> [(String, UnsafePointer<Google__Protobuf__Value>?)] {
        let count = object.pointee.n_fields
        guard count > 0, let fields = object.pointee.fields else { return [] }
        var entries: [(String, UnsafePointer<Google__Protobuf__Value>?)] = []
        entries.reserveCapacity(count)
        for k in 0..<count {
            guard let entry = fields[k] else { continue }
            let key = try protoString(entry.pointee.key, "google.protobuf.Struct key", method)
            entries.append((key, entry.pointee.value.map { UnsafePointer($0) }))
        }
        guard entries.count > 1 else { return entries }
        // Drop every entry whose key comes again later. Small maps (the usual case) compare
        // pairwise; large ones hash.
        var dropped = 0
        var keep = [Bool](repeating: true, count: entries.count)
        if entries.count <= 16 {
            for i in 0..<(entries.count - 1) where entries[(i + 1)...].contains(where: { $0.0 == entries[i].0 }) {
                keep[i] = false
                dropped += 1
            }
        } else {
            var later: Set<String> = []
            for i in entries.indices.reversed() where !later.insert(entries[i].0).inserted {
                keep[i] = false
                dropped += 1
            }
        }
        guard dropped > 0 else { return entries }
        return entries.indices.filter { keep[$0] }.map { entries[$0] }
    }

    /// Appends one value at `depth` (of the object holding it) and says what it is. `path` is
    /// the top-level key it sits under, for messages.
    private mutating func append(_ value: UnsafePointer<Google__Protobuf__Value>?, path: String, depth: Int) throws(GRPCStatus) -> JSONScalar {
        guard let value else {
            // A map entry without its value: protobuf's default for a message, an empty Value.
            throw .invalid("extensions: a google.protobuf.Value under \(quoted(path)) has no kind set")
        }
        switch value.pointee.kind_case.rawValue {
        case GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE.rawValue:
            bytes.append(contentsOf: "null".utf8)
            return .null
        case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE.rawValue:
            let number = value.pointee.number_value
            guard number.isFinite else {
                throw .invalid("extensions: \(number) under \(quoted(path)) is not a JSON number (RFC 8259 §6: NaN and Infinity have no JSON spelling)")
            }
            guard let integer = try JSONNumber.append(number, to: &bytes) else { return .number }
            return .integer(integer)
        case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE.rawValue:
            let string = try protoString(value.pointee.string_value, "google.protobuf.Value.string_value", method)
            JSONWriter.appendString(string, to: &bytes)
            return .string(string)
        case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE.rawValue:
            let flag = value.pointee.bool_value != 0
            bytes.append(contentsOf: (flag ? "true" : "false").utf8)
            return .bool(flag)
        case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE.rawValue:
            try enter(depth + 1, path)
            bytes.append(UInt8(ascii: "{"))
            if let nested = value.pointee.struct_value {
                var first = true
                for (key, inner) in try entries(nested) {
                    if !first { bytes.append(UInt8(ascii: ",")) }
                    first = false
                    JSONWriter.appendKey(key, to: &bytes)
                    _ = try append(inner, path: path, depth: depth + 1)
                }
            }
            bytes.append(UInt8(ascii: "}"))
            return .object
        case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE.rawValue:
            try enter(depth + 1, path)
            bytes.append(UInt8(ascii: "["))
            if let list = value.pointee.list_value, let values = list.pointee.values {
                for k in 0..<list.pointee.n_values {
                    if k > 0 { bytes.append(UInt8(ascii: ",")) }
                    _ = try append(values[k].map { UnsafePointer($0) }, path: path, depth: depth + 1)
                }
            }
            bytes.append(UInt8(ascii: "]"))
            return .array
        default:
            // protobuf-go's protojson refuses this too ("none of the oneof fields is set"):
            // there is no JSON for it, and guessing null would hide a client bug.
            throw .invalid("extensions: a google.protobuf.Value under \(quoted(path)) has no kind set")
        }
    }

    /// The same limit and message as the REST body's reader (`JSONReadError.tooDeep`).
    /// `StructDepthGuard` has already refused deeper input before protobuf-c ran; this keeps the
    /// renderer's own recursion bounded whatever its caller did.
    private func enter(_ depth: Int, _ path: String) throws(GRPCStatus) {
        if depth > maxDepth {
            throw GRPCStatus(ContextError(JSONReadError.tooDeep(limit: maxDepth)))
        }
    }

    private func quoted(_ path: String) -> String {
        var out: [UInt8] = []
        JSONWriter.appendString(path, to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// JSON numbers from doubles.
enum JSONNumber {
    /// 2^53: every integer up to here is exactly a double, so it prints as itself.
    static let exactIntegerLimit = 9_007_199_254_740_992.0

    /// Appends `value` and returns it as an Int64 when it was written as an integer.
    /// Refuses NaN and ±Infinity: JSON has no spelling for them (RFC 8259 §6).
    static func append(_ value: Double, to out: inout [UInt8]) throws(GRPCStatus) -> Int64? {
        guard value.isFinite else {
            throw .invalid("extensions: \(value) is not a JSON number (NaN and Infinity have no JSON spelling)")
        }
        if value.magnitude <= exactIntegerLimit && value.rounded(.towardZero) == value {
            let integer = Int64(value)  // -0.0 becomes 0: an integer has no negative zero
            JSONWriter.appendInt(integer, to: &out)
            return integer
        }
        appendShortest(value, to: &out)
        return nil
    }

    /// The shortest digits that round-trip (Swift's `description` computes them), laid out as
    /// ECMAScript's Number::toString does (RFC 8785 §3.2.2.3): plain decimals for exponents
    /// from -6 to 20, otherwise `d.ddde+N` / `d.ddde-N` with no zero padding. Swift's own
    /// layout ("1e-07", "9007199254740994.0") is valid JSON too, but not one canonical form.
    static func appendShortest(_ value: Double, to out: inout [UInt8]) {
        var digits: [UInt8] = []
        digits.reserveCapacity(17)
        // value = 0.d1d2…dk × 10^pointPosition
        var pointPosition = 0
        var seenPoint = false
        var exponent = 0
        var exponentSign = 1
        var inExponent = false
        for c in value.magnitude.description.utf8 {
            if inExponent {
                switch c {
                case UInt8(ascii: "-"): exponentSign = -1
                case UInt8(ascii: "+"): break
                default: exponent = exponent * 10 + Int(c - UInt8(ascii: "0"))
                }
                continue
            }
            switch c {
            case UInt8(ascii: "."): seenPoint = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"): inExponent = true
            default:
                if digits.isEmpty && c == UInt8(ascii: "0") {
                    if seenPoint { pointPosition -= 1 }  // 0.000123: leading zeros after the point
                    continue
                }
                digits.append(c)
                if !seenPoint { pointPosition += 1 }
            }
        }
        while digits.count > 1 && digits.last == UInt8(ascii: "0") { digits.removeLast() }
        let n = pointPosition + exponentSign * exponent
        let k = digits.count

        if value < 0 { out.append(UInt8(ascii: "-")) }
        if k <= n && n <= 21 {
            out.append(contentsOf: digits)
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: n - k))
        } else if 0 < n && n <= 21 {
            out.append(contentsOf: digits[..<n])
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: digits[n...])
        } else if -6 < n && n <= 0 {
            out.append(UInt8(ascii: "0"))
            out.append(UInt8(ascii: "."))
            out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -n))
            out.append(contentsOf: digits)
        } else {
            out.append(digits[0])
            if k > 1 {
                out.append(UInt8(ascii: "."))
                out.append(contentsOf: digits[1...])
            }
            out.append(UInt8(ascii: "e"))
            out.append(UInt8(ascii: n - 1 < 0 ? "-" : "+"))
            JSONWriter.appendInt(Int64((n - 1).magnitude), to: &out)
        }
    }
}
