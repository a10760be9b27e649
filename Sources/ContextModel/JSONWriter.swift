// Canonical JSON output primitives: no whitespace anywhere, one fixed
// spelling per value, so equal values always serialise to equal bytes.

public import NIOCore

/// Where JSON is written: a byte array, or a `ByteBuffer` (the canonical body of a gateway
/// call is written straight into the buffer that carries it upstream).
public protocol JSONOutput {
    mutating func appendByte(_ byte: UInt8)
    mutating func appendBytes(_ bytes: UnsafeRawBufferPointer)
}

extension Array: JSONOutput where Element == UInt8 {
    @inline(__always) public mutating func appendByte(_ byte: UInt8) { append(byte) }
    @inline(__always) public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) { append(contentsOf: bytes) }
}

extension ByteBuffer: JSONOutput {
    @inline(__always) public mutating func appendByte(_ byte: UInt8) { writeInteger(byte) }
    @inline(__always) public mutating func appendBytes(_ bytes: UnsafeRawBufferPointer) { writeBytes(bytes) }
}

/// Canonical JSON primitives (no whitespace anywhere). The public entry points take a byte
/// array, so callers in other modules never run unspecialised generic code; inside this
/// module the same code is generic over `JSONOutput` and specialised for each output.
public enum JSONWriter {
    /// RFC 8259 string with quotes: escapes `"` as \" and `\` as \\, control characters U+0000..U+001F
    /// as \b \f \n \r \t where those exist, otherwise \u00XX with LOWERCASE hex; everything else
    /// (including '/', DEL, and all non-ASCII) as raw UTF-8.
    public static func appendString(_ s: String, to out: inout [UInt8]) {
        string(s, to: &out)
    }

    public static func appendString(_ s: Substring, to out: inout [UInt8]) {
        out.append(quote)
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { appendEscaped($0, to: &out) }
        if done == nil { appendEscapedSlowly(s.utf8, to: &out) }
        out.append(quote)
    }

    /// Decimal, no fraction, no leading zeros, "-" for negatives (Int64.min works).
    public static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        int(v, to: &out)
    }

    /// Appends `"key":` (the key escaped as by `appendString`).
    public static func appendKey(_ key: String, to out: inout [UInt8]) {
        self.key(key, to: &out)
    }

    static func string<Out: JSONOutput>(_ s: String, to out: inout Out) {
        out.appendByte(quote)
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { appendEscaped($0, to: &out) }
        if done == nil { appendEscapedSlowly(s.utf8, to: &out) }
        out.appendByte(quote)
    }

    static func int<Out: JSONOutput>(_ v: Int64, to out: inout Out) {
        if v < 0 { out.appendByte(UInt8(ascii: "-")) }
        // `magnitude` is a UInt64, so Int64.min needs no special case.
        var m = v.magnitude
        // Digits into a fixed buffer from the end, then appended once: `out[start...].reverse()`
        // copied the slice, one malloc per integer of two or more digits.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes ≥ the 20 digits of UInt64.max
        withUnsafeMutableBytes(of: &digits) { buffer in
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            } while m != 0
            out.appendBytes(UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }

    static func key<Out: JSONOutput>(_ key: String, to out: inout Out) {
        string(key, to: &out)
        out.appendByte(UInt8(ascii: ":"))
    }

    // MARK: - Escaping

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let lowerHex: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    private static func needsEscape(_ b: UInt8) -> Bool {
        b < 0x20 || b == quote || b == backslash
    }

    /// Appends the bytes verbatim in runs, escaping only what RFC 8259 §7 requires.
    /// Swift Strings are always valid UTF-8, so non-ASCII bytes pass through.
    private static func appendEscaped<Out: JSONOutput>(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout Out) {
        var runStart = 0
        var k = 0
        while k < bytes.count {
            let b = bytes[k]
            if needsEscape(b) {
                if k > runStart { out.appendBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart..<k]))) }
                appendEscape(for: b, to: &out)
                runStart = k + 1
            }
            k += 1
        }
        if k > runStart { out.appendBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[runStart..<k]))) }
    }

    /// Fallback for strings without contiguous UTF-8 storage (e.g. bridged ones).
    private static func appendEscapedSlowly<C: Collection<UInt8>, Out: JSONOutput>(_ bytes: C, to out: inout Out) {
        for b in bytes {
            if needsEscape(b) { appendEscape(for: b, to: &out) } else { out.appendByte(b) }
        }
    }

    private static func appendEscape<Out: JSONOutput>(for b: UInt8, to out: inout Out) {
        out.appendByte(backslash)
        switch b {
        case quote: out.appendByte(quote)
        case backslash: out.appendByte(backslash)
        case 0x08: out.appendByte(UInt8(ascii: "b"))
        case 0x0C: out.appendByte(UInt8(ascii: "f"))
        case 0x0A: out.appendByte(UInt8(ascii: "n"))
        case 0x0D: out.appendByte(UInt8(ascii: "r"))
        case 0x09: out.appendByte(UInt8(ascii: "t"))
        default:
            // Other control characters: \u00XX, lowercase hex.
            out.appendByte(UInt8(ascii: "u"))
            out.appendByte(UInt8(ascii: "0"))
            out.appendByte(UInt8(ascii: "0"))
            out.appendByte(lowerHex[Int(b >> 4)])
            out.appendByte(lowerHex[Int(b & 0xF)])
        }
    }
}
