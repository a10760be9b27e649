public import NIOCore

// A strict, allocation-light reader for untrusted JSON request bodies.
//
// The whole document is validated against RFC 8259 (plus the contract's
// extra rules: no duplicate keys at any depth, bounded size and depth), but
// only the members of the top-level object are materialised; nested values
// are checked and then referred to by their raw byte range.
//
// The parser is iterative with an explicit frame stack, so no input can
// exhaust the Swift stack whatever `maxDepth` a caller chooses.

/// Limits for untrusted JSON. Defaults from the contract: 1 MiB, depth 64.
public struct JSONLimits: Sendable, Equatable {
    /// Largest accepted body, in bytes. Checked before any parsing.
    public var maxBytes: Int
    /// Deepest accepted nesting of arrays and objects; the top-level object is depth 1.
    public var maxDepth: Int

    public init(maxBytes: Int = 1 << 20, maxDepth: Int = 64) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
    }

    public static let defaults = JSONLimits()
}

public enum JSONReadError: Error, Equatable, Sendable {
    /// The body is bigger than `maxBytes` (checked first, before parsing).
    case tooLarge(limit: Int)
    /// Arrays/objects nest deeper than `maxDepth`.
    case tooDeep(limit: Int)
    /// The same decoded key appears twice in one object, at any depth.
    case duplicateKey(String)
    /// The document is valid JSON but not an object, or is empty / only whitespace.
    case notAnObject
    /// Any syntax error, invalid UTF-8, lone surrogate, trailing garbage...
    /// `offset` is a byte offset into the input.
    case malformed(offset: Int, reason: String)

    /// A one-line human message.
    public var message: String {
        switch self {
        case .tooLarge(let limit):
            return "body larger than \(limit) bytes"
        case .tooDeep(let limit):
            return "JSON nesting deeper than \(limit)"
        case .duplicateKey(let key):
            // Escaped as a JSON string so that the message stays on one line
            // whatever the key contains.
            var quoted: [UInt8] = []
            JSONWriter.appendString(key, to: &quoted)
            return "duplicate key " + String(decoding: quoted, as: UTF8.self)
        case .notAnObject:
            return "JSON body must be an object"
        case .malformed(let offset, let reason):
            return "malformed JSON at byte \(offset): \(reason)"
        }
    }
}

/// What a top-level member's value is. Only scalars are decoded; containers are validated, not built.
public enum JSONScalar: Equatable, Sendable {
    /// Decoded (escapes resolved).
    case string(String)
    /// A number token with no fraction and no exponent that fits Int64; "-0" gives 0.
    case integer(Int64)
    /// A number token with no fraction/exponent outside Int64.
    case bigInteger
    /// A number token with a fraction or an exponent.
    case number
    case bool(Bool)
    case null
    case object
    case array
}

public struct JSONMember: Sendable, Equatable {
    /// Decoded key.
    public var key: String
    /// Byte offsets of the key token INCLUDING its quotes, exactly as sent.
    public var rawKey: Range<Int>
    /// Byte offsets of the value token exactly as sent (for containers: from
    /// '[' / '{' through the matching bracket).
    public var rawValue: Range<Int>
    public var value: JSONScalar

    public init(key: String, rawKey: Range<Int>, rawValue: Range<Int>, value: JSONScalar) {
        self.key = key
        self.rawKey = rawKey
        self.rawValue = rawValue
        self.value = value
    }
}

public enum StrictJSON {
    /// Validates the WHOLE document strictly (RFC 8259) and returns the members of its
    /// top-level object in the order sent.
    public static func readObject(
        _ bytes: UnsafeRawBufferPointer,
        limits: JSONLimits = .defaults
    ) throws(JSONReadError) -> [JSONMember] {
        if bytes.count > limits.maxBytes { throw .tooLarge(limit: limits.maxBytes) }
        var parser = StrictJSONParser(bytes: bytes, maxDepth: limits.maxDepth)
        return try parser.parseDocument()
    }

    public static func readObject(
        _ bytes: [UInt8],
        limits: JSONLimits = .defaults
    ) throws(JSONReadError) -> [JSONMember] {
        if bytes.count > limits.maxBytes { throw .tooLarge(limit: limits.maxBytes) }
        // `Array.withUnsafeBytes` is `rethrows` (untyped), so carry the typed
        // error out through a Result.
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONReadError) -> [JSONMember] in
                try readObject(raw, limits: limits)
            }
        }
        return try result.get()
    }

    /// Read in place from the buffer the document arrived in.
    public static func readObject(
        _ buffer: ByteBuffer,
        limits: JSONLimits = .defaults
    ) throws(JSONReadError) -> [JSONMember] {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(JSONReadError) -> [JSONMember] in
                try readObject(raw, limits: limits)
            }
        }
        return try result.get()
    }
}

// MARK: - Parser

/// ASCII code points used by the parser.
private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let lowerU = UInt8(ascii: "u")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

/// One open array or object.
private struct Frame {
    var isObject: Bool
    /// Offset of the opening bracket (start of the container's raw range).
    var start: Int
    /// Index into `keyRefs` / `keyScratch` where this object's keys begin
    /// (nested objects only; the top-level object keeps its keys as Strings).
    var keyBase: Int
    var scratchBase: Int
    /// Hashes of this object's keys, built once it has more than
    /// `linearKeyLimit` keys so duplicate detection stays O(n).
    var keyHashes: Set<Int>?
}

/// The decoded bytes of a nested object's key: either a slice of the input
/// (no escapes) or a slice of `keyScratch` (escapes resolved).
private struct KeyRef {
    var inScratch: Bool
    var start: Int
    var count: Int
}

/// Objects with up to this many keys are checked for duplicates by a linear
/// scan; larger ones switch to a hash set.
private let linearKeyLimit = 16

private struct StrictJSONParser {
    let bytes: UnsafeRawBufferPointer
    let count: Int
    let maxDepth: Int
    /// Current read position (byte offset).
    var i = 0

    var frames: [Frame] = []
    /// Keys of every open nested object, innermost last.
    var keyRefs: [KeyRef] = []
    /// Decoded bytes of nested keys that contained escapes.
    var keyScratch: [UInt8] = []

    /// Whether the document's root is an object (frame 0 is then the top-level object).
    var rootIsObject = false
    var members: [JSONMember] = []
    /// Top-level keys, built once the object has more than `linearKeyLimit` members.
    var topLevelKeys: Set<String>?
    /// The key most recently read in the top-level object, awaiting its value.
    var pendingKey = ""
    var pendingRawKey = 0..<0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.count = bytes.count
        self.maxDepth = maxDepth
        // Typical bodies are small and shallow: avoid regrowing from empty.
        frames.reserveCapacity(min(max(maxDepth, 1), 16))
        members.reserveCapacity(16)
    }

    /// True while reading a value or key that belongs directly to the top-level object.
    private var atTopLevelObject: Bool { rootIsObject && frames.count == 1 }

    private func malformed(_ offset: Int, _ reason: String) -> JSONReadError {
        .malformed(offset: offset, reason: reason)
    }

    // MARK: Document

    mutating func parseDocument() throws(JSONReadError) -> [JSONMember] {
        skipWhitespace()
        if i == count { throw .notAnObject }
        if bytes[i] == 0xEF {
            // RFC 8259 §8.1: implementations MUST NOT add a byte order mark;
            // we refuse one rather than silently ignoring it.
            throw malformed(i, "a byte order mark is not allowed")
        }
        rootIsObject = bytes[i] == ASCII.openBrace

        // Each turn of this loop reads one value starting at `i` (whitespace
        // already skipped). Opening a non-empty container pushes a frame and
        // starts the next turn at its first element; otherwise the value is
        // complete and the inner loop consumes separators and closing
        // brackets until another value is due or the document ends.
        valueLoop: while true {
            guard i < count else { throw malformed(i, "unexpected end of input, expected a value") }
            var valueStart = i
            var value: JSONScalar
            switch bytes[i] {
            case ASCII.openBrace:
                try push(isObject: true)
                i += 1
                skipWhitespace()
                if i < count && bytes[i] == ASCII.closeBrace {
                    i += 1
                    popObject()
                    value = .object
                } else {
                    try readKeyAndColon()
                    continue valueLoop
                }
            case ASCII.openBracket:
                try push(isObject: false)
                i += 1
                skipWhitespace()
                if i < count && bytes[i] == ASCII.closeBracket {
                    i += 1
                    frames.removeLast()
                    value = .array
                } else {
                    continue valueLoop
                }
            case ASCII.quote:
                value = try readStringValue(decode: atTopLevelObject)
            case ASCII.minus, ASCII.zero...ASCII.nine:
                value = try readNumber()
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                value = .bool(true)
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                value = .bool(false)
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                value = .null
            default:
                throw malformed(i, "expected a value")
            }

            // The value `valueStart..<i` is complete.
            while true {
                if frames.isEmpty {
                    return try finishDocument()
                }
                if atTopLevelObject {
                    members.append(JSONMember(
                        key: pendingKey, rawKey: pendingRawKey,
                        rawValue: valueStart..<i, value: value))
                }
                skipWhitespace()
                guard i < count else { throw malformed(i, "unexpected end of input") }
                let b = bytes[i]
                if frames[frames.count - 1].isObject {
                    if b == ASCII.comma {
                        i += 1
                        skipWhitespace()
                        try readKeyAndColon()
                        continue valueLoop
                    }
                    guard b == ASCII.closeBrace else {
                        throw malformed(i, "expected ',' or '}' after object member")
                    }
                    i += 1
                    valueStart = frames[frames.count - 1].start
                    popObject()
                    value = .object
                } else {
                    if b == ASCII.comma {
                        i += 1
                        skipWhitespace()
                        continue valueLoop
                    }
                    guard b == ASCII.closeBracket else {
                        throw malformed(i, "expected ',' or ']' after array element")
                    }
                    i += 1
                    valueStart = frames.removeLast().start
                    value = .array
                }
            }
        }
    }

    private mutating func finishDocument() throws(JSONReadError) -> [JSONMember] {
        skipWhitespace()
        if i != count { throw malformed(i, "unexpected data after the JSON value") }
        if !rootIsObject { throw .notAnObject }
        return members
    }

    // MARK: Containers

    private mutating func push(isObject: Bool) throws(JSONReadError) {
        if frames.count >= maxDepth { throw .tooDeep(limit: maxDepth) }
        frames.append(Frame(
            isObject: isObject, start: i,
            keyBase: keyRefs.count, scratchBase: keyScratch.count,
            keyHashes: nil))
    }

    /// Pops an object frame, forgetting its keys (keeping the buffers' capacity).
    private mutating func popObject() {
        let frame = frames.removeLast()
        if keyRefs.count > frame.keyBase {
            keyRefs.removeSubrange(frame.keyBase...)
        }
        if keyScratch.count > frame.scratchBase {
            keyScratch.removeSubrange(frame.scratchBase...)
        }
    }

    // MARK: Keys

    /// Reads `"key"` `:` and the whitespace after it, checking for duplicates.
    private mutating func readKeyAndColon() throws(JSONReadError) {
        guard i < count else { throw malformed(i, "unexpected end of input, expected a string key") }
        guard bytes[i] == ASCII.quote else { throw malformed(i, "expected a string key") }
        let keyStart = i
        let hasEscapes = try scanString()
        let contentStart = keyStart + 1
        let contentEnd = i - 1

        if atTopLevelObject {
            let key = makeString(contentStart..<contentEnd, hasEscapes: hasEscapes)
            try checkTopLevelDuplicate(key)
            pendingKey = key
            pendingRawKey = keyStart..<i
        } else {
            try addNestedKey(contentStart..<contentEnd, hasEscapes: hasEscapes)
        }

        skipWhitespace()
        guard i < count, bytes[i] == ASCII.colon else {
            throw malformed(i, "expected ':' after object key")
        }
        i += 1
        skipWhitespace()
    }

    /// Top-level keys are materialised anyway, so they are compared as Swift
    /// Strings. String equality is Unicode canonical equivalence, a superset
    /// of the code-point equality used for nested keys: callers that index
    /// members by `key` can never see two members collapse into one.
    private mutating func checkTopLevelDuplicate(_ key: String) throws(JSONReadError) {
        if topLevelKeys == nil {
            for member in members where member.key == key {
                throw .duplicateKey(key)
            }
            if members.count >= linearKeyLimit {
                topLevelKeys = Set(members.lazy.map(\.key))
                topLevelKeys!.insert(key)
            }
        } else if !topLevelKeys!.insert(key).inserted {
            throw .duplicateKey(key)
        }
    }

    /// Nested keys are compared by their decoded UTF-8 bytes, i.e. code point
    /// by code point (RFC 8259 §8.3), without building Strings.
    private mutating func addNestedKey(_ content: Range<Int>, hasEscapes: Bool) throws(JSONReadError) {
        let ref: KeyRef
        if hasEscapes {
            // Decoding never lengthens the content, so it fits in place.
            let start = keyScratch.count
            keyScratch.append(contentsOf: repeatElement(0, count: content.count))
            let source = bytes
            let decoded = keyScratch.withUnsafeMutableBufferPointer { scratch in
                Self.decodeEscaped(source, content, into: UnsafeMutableBufferPointer(rebasing: scratch[start...]))
            }
            keyScratch.removeLast(content.count - decoded)
            ref = KeyRef(inScratch: true, start: start, count: decoded)
        } else {
            ref = KeyRef(inScratch: false, start: content.lowerBound, count: content.count)
        }

        let top = frames.count - 1
        let base = frames[top].keyBase
        let existing = keyRefs.count - base
        if existing >= linearKeyLimit {
            if frames[top].keyHashes == nil {
                var hashes = Set<Int>(minimumCapacity: existing * 2)
                for k in keyRefs[base...] { hashes.insert(hashKey(k)) }
                frames[top].keyHashes = hashes
            }
            // Only a hash collision (or a real duplicate) needs the byte scan.
            if !frames[top].keyHashes!.insert(hashKey(ref)).inserted,
               containsKey(ref, from: base) {
                throw .duplicateKey(keyString(ref))
            }
        } else if containsKey(ref, from: base) {
            throw .duplicateKey(keyString(ref))
        }
        keyRefs.append(ref)
    }

    private func withKeyBytes<R>(_ ref: KeyRef, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        if ref.inScratch {
            return keyScratch.withUnsafeBytes { scratch in
                body(UnsafeRawBufferPointer(rebasing: scratch[ref.start..<(ref.start + ref.count)]))
            }
        }
        return body(UnsafeRawBufferPointer(rebasing: bytes[ref.start..<(ref.start + ref.count)]))
    }

    private func hashKey(_ ref: KeyRef) -> Int {
        withKeyBytes(ref) { raw in
            var hasher = Hasher()
            hasher.combine(bytes: raw)
            return hasher.finalize()
        }
    }

    private func keyString(_ ref: KeyRef) -> String {
        withKeyBytes(ref) { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether `keyRefs[base...]` holds a key with the same bytes as `ref`.
    private func containsKey(_ ref: KeyRef, from base: Int) -> Bool {
        keyScratch.withUnsafeBytes { scratch in
            func slice(_ k: KeyRef) -> UnsafeRawBufferPointer {
                let source = k.inScratch ? scratch : bytes
                return UnsafeRawBufferPointer(rebasing: source[k.start..<(k.start + k.count)])
            }
            let wanted = slice(ref)
            for k in keyRefs[base...] where k.count == ref.count {
                let other = slice(k)
                var j = 0
                while j < wanted.count && wanted[j] == other[j] { j += 1 }
                if j == wanted.count { return true }
            }
            return false
        }
    }

    // MARK: Strings

    /// Reads a string value, decoding it only when `decode` (a top-level member).
    private mutating func readStringValue(decode: Bool) throws(JSONReadError) -> JSONScalar {
        let start = i
        let hasEscapes = try scanString()
        guard decode else { return .string("") }
        return .string(makeString((start + 1)..<(i - 1), hasEscapes: hasEscapes))
    }

    /// Builds the String for already-validated string content.
    private func makeString(_ content: Range<Int>, hasEscapes: Bool) -> String {
        if !hasEscapes {
            // Validated UTF-8: a single copy, no repair needed.
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[content]), as: UTF8.self)
        }
        // Decoding never lengthens the content (an escape of 2, 6 or 12
        // bytes yields at most 1, 3 or 4), so decode straight into the String.
        return String(unsafeUninitializedCapacity: content.count) { buffer in
            Self.decodeEscaped(bytes, content, into: buffer)
        }
    }

    /// Validates a string token starting at the opening quote at `i` and
    /// leaves `i` just past the closing quote. Returns whether it contains
    /// escapes. RFC 8259 §7: no raw control characters; §8.1: UTF-8.
    private mutating func scanString() throws(JSONReadError) -> Bool {
        i += 1
        var hasEscapes = false
        while true {
            skipPlainASCII()
            guard i < count else { throw malformed(i, "unterminated string") }
            let b = bytes[i]
            if b >= 0x20 && b < 0x80 {
                if b == ASCII.quote {
                    i += 1
                    return hasEscapes
                }
                if b == ASCII.backslash {
                    hasEscapes = true
                    try scanEscape()
                } else {
                    i += 1
                }
            } else if b < 0x20 {
                throw malformed(i, "control character U+00\(hex2(b)) must be escaped in a string")
            } else {
                try scanUTF8Sequence()
            }
        }
    }

    /// Skips, eight bytes at a time, string content that needs no attention:
    /// printable ASCII other than '"' and '\\'. Stops at (or shortly before)
    /// the first byte that does; `scanString` handles the rest byte by byte.
    @inline(__always)
    private mutating func skipPlainASCII() {
        // SWAR tests ("Bit Twiddling Hacks", haszero / hasless); each is exact
        // as to whether ANY byte of the word matches, which is all we need.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while i &+ 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            let quotes = word ^ (ones &* UInt64(ASCII.quote))
            let backslashes = word ^ (ones &* UInt64(ASCII.backslash))
            let special = ((word &- ones &* 0x20) & ~word)           // a byte < 0x20
                | ((quotes &- ones) & ~quotes)                     // a '"'
                | ((backslashes &- ones) & ~backslashes)           // a '\\'
                | word                                             // a byte >= 0x80
            if special & highs != 0 { return }
            i &+= 8
        }
    }

    /// Validates the escape sequence whose backslash is at `i` and skips it.
    private mutating func scanEscape() throws(JSONReadError) {
        guard i + 1 < count else { throw malformed(i, "unterminated string") }
        switch bytes[i + 1] {
        case ASCII.quote, ASCII.backslash, ASCII.slash,
             UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
             UInt8(ascii: "r"), UInt8(ascii: "t"):
            i += 2
        case ASCII.lowerU:
            let unit = try hex4(at: i + 2, escapeAt: i)
            switch unit {
            case 0xD800...0xDBFF:
                // RFC 8259 §7: a code point outside the BMP is escaped as a
                // UTF-16 surrogate pair; the low half must follow at once.
                guard i + 7 < count, bytes[i + 6] == ASCII.backslash, bytes[i + 7] == ASCII.lowerU else {
                    throw malformed(i, "high surrogate \\u\(hex4String(unit)) is not followed by a low surrogate")
                }
                let low = try hex4(at: i + 8, escapeAt: i + 6)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw malformed(i, "high surrogate \\u\(hex4String(unit)) is not followed by a low surrogate")
                }
                i += 12
            case 0xDC00...0xDFFF:
                throw malformed(i, "low surrogate \\u\(hex4String(unit)) without a preceding high surrogate")
            default:
                i += 6
            }
        default:
            throw malformed(i, "invalid escape sequence in string")
        }
    }

    /// The value of the four hex digits at `offset` (of a `\u` escape at `escapeAt`).
    private func hex4(at offset: Int, escapeAt: Int) throws(JSONReadError) -> UInt32 {
        guard offset + 4 <= count else { throw malformed(escapeAt, "truncated \\u escape") }
        var value: UInt32 = 0
        for k in offset..<(offset + 4) {
            guard let digit = hexDigitValue(bytes[k]) else {
                throw malformed(escapeAt, "\\u must be followed by four hex digits")
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence whose lead byte is at `i`
    /// (RFC 3629 §4 table: no overlongs, no surrogates, nothing above U+10FFFF).
    private mutating func scanUTF8Sequence() throws(JSONReadError) {
        let lead = bytes[i]
        let trailing: Int
        var low: UInt8 = 0x80  // allowed range of the second byte
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: trailing = 1
        case 0xE0: trailing = 2; low = 0xA0  // refuse overlong 3-byte forms
        case 0xE1...0xEC, 0xEE...0xEF: trailing = 2
        case 0xED: trailing = 2; high = 0x9F  // refuse encoded surrogates U+D800..DFFF
        case 0xF0: trailing = 3; low = 0x90  // refuse overlong 4-byte forms
        case 0xF1...0xF3: trailing = 3
        case 0xF4: trailing = 3; high = 0x8F  // refuse code points above U+10FFFF
        default:
            // 0x80...0xBF (stray continuation), 0xC0, 0xC1, 0xF5...0xFF.
            throw malformed(i, "invalid UTF-8 byte 0x\(hex2(lead))")
        }
        guard i + trailing < count else { throw malformed(i, "truncated UTF-8 sequence") }
        let second = bytes[i + 1]
        guard second >= low && second <= high else { throw malformed(i, "invalid UTF-8 sequence") }
        var k = 2
        while k <= trailing {
            guard bytes[i + k] & 0xC0 == 0x80 else { throw malformed(i, "invalid UTF-8 sequence") }
            k += 1
        }
        i += trailing + 1
    }

    /// Writes the decoded content of an already-validated string (between
    /// its quotes) to `out`, resolving escapes, and returns the number of
    /// bytes written. `out` must hold at least `content.count` bytes.
    private static func decodeEscaped(
        _ bytes: UnsafeRawBufferPointer, _ content: Range<Int>, into out: UnsafeMutableBufferPointer<UInt8>
    ) -> Int {
        func hex4(at offset: Int) -> UInt32 {
            var value: UInt32 = 0
            for k in offset..<(offset + 4) { value = value << 4 | (hexDigitValue(bytes[k]) ?? 0) }
            return value
        }
        var k = content.lowerBound
        let end = content.upperBound
        var n = 0
        while k < end {
            // Copy the run up to the next backslash in one go.
            var runEnd = k
            while runEnd < end && bytes[runEnd] != ASCII.backslash { runEnd += 1 }
            if runEnd > k {
                let run = UnsafeRawBufferPointer(rebasing: bytes[k..<runEnd])
                UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: out[n..<(n + run.count)]))
                    .copyMemory(from: run)
                n += run.count
                k = runEnd
            }
            if k == end { break }
            let c = bytes[k + 1]
            k += 2
            switch c {
            case UInt8(ascii: "b"): out[n] = 0x08; n += 1
            case UInt8(ascii: "f"): out[n] = 0x0C; n += 1
            case UInt8(ascii: "n"): out[n] = 0x0A; n += 1
            case UInt8(ascii: "r"): out[n] = 0x0D; n += 1
            case UInt8(ascii: "t"): out[n] = 0x09; n += 1
            case ASCII.lowerU:
                var scalar = hex4(at: k)
                k += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    // Validated: a `\uDC00`...`\uDFFF` escape follows.
                    let lowHalf = hex4(at: k + 2)
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (lowHalf - 0xDC00)
                    k += 6
                }
                n += writeUTF8(scalar, to: out, at: n)
            default:  // '"', '\\', '/'
                out[n] = c; n += 1
            }
        }
        return n
    }

    // MARK: Numbers and literals

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?`
    private mutating func readNumber() throws(JSONReadError) -> JSONScalar {
        var negative = false
        if bytes[i] == ASCII.minus {
            negative = true
            i += 1
        }
        guard i < count, isDigit(bytes[i]) else { throw malformed(i, "expected a digit") }

        // Accumulate negatively so Int64.min fits.
        var value: Int64 = 0
        var overflow = false
        if bytes[i] == ASCII.zero {
            i += 1
            if i < count && isDigit(bytes[i]) {
                throw malformed(i, "leading zeros are not allowed in numbers")
            }
        } else {
            while i < count, isDigit(bytes[i]) {
                if !overflow {
                    let (times10, o1) = value.multipliedReportingOverflow(by: 10)
                    let (next, o2) = times10.subtractingReportingOverflow(Int64(bytes[i] &- ASCII.zero))
                    if o1 || o2 { overflow = true } else { value = next }
                }
                i += 1
            }
        }

        var isInteger = true
        if i < count && bytes[i] == ASCII.dot {
            i += 1
            guard i < count, isDigit(bytes[i]) else {
                throw malformed(i, "expected a digit after the decimal point")
            }
            while i < count, isDigit(bytes[i]) { i += 1 }
            isInteger = false
        }
        if i < count && (bytes[i] == ASCII.lowerE || bytes[i] == ASCII.upperE) {
            i += 1
            if i < count && (bytes[i] == ASCII.plus || bytes[i] == ASCII.minus) { i += 1 }
            guard i < count, isDigit(bytes[i]) else {
                throw malformed(i, "expected a digit in the exponent")
            }
            while i < count, isDigit(bytes[i]) { i += 1 }
            isInteger = false
        }

        if !isInteger { return .number }
        if overflow { return .bigInteger }
        if negative { return .integer(value) }
        if value == .min { return .bigInteger }  // 9223372036854775808
        return .integer(-value)
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONReadError) {
        let n = literal.utf8CodeUnitCount
        let text = literal.utf8Start
        guard i + n <= count else { throw malformed(i, "invalid literal, expected '\(literal)'") }
        for k in 0..<n where bytes[i + k] != text[k] {
            throw malformed(i, "invalid literal, expected '\(literal)'")
        }
        i += n
    }

    // MARK: Whitespace

    /// RFC 8259 §2: only space, horizontal tab, line feed and carriage return.
    private mutating func skipWhitespace() {
        while i < count {
            switch bytes[i] {
            case ASCII.space, ASCII.tab, ASCII.lineFeed, ASCII.carriageReturn: i += 1
            default: return
            }
        }
    }
}

// MARK: - Helpers

@inline(__always)
private func isDigit(_ b: UInt8) -> Bool { b >= ASCII.zero && b <= ASCII.nine }

@inline(__always)
private func hexDigitValue(_ b: UInt8) -> UInt32? {
    switch b {
    case ASCII.zero...ASCII.nine: return UInt32(b - ASCII.zero)
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
    default: return nil
    }
}

private let upperHexDigits: [Character] = Array("0123456789ABCDEF")

private func hex2(_ b: UInt8) -> String {
    String([upperHexDigits[Int(b >> 4)], upperHexDigits[Int(b & 0xF)]])
}

private func hex4String(_ v: UInt32) -> String {
    hex2(UInt8(truncatingIfNeeded: v >> 8)) + hex2(UInt8(truncatingIfNeeded: v))
}

/// Writes a Unicode scalar value (not a surrogate) as UTF-8 at `out[n...]`
/// and returns the number of bytes written.
private func writeUTF8(_ scalar: UInt32, to out: UnsafeMutableBufferPointer<UInt8>, at n: Int) -> Int {
    switch scalar {
    case 0..<0x80:
        out[n] = UInt8(scalar)
        return 1
    case 0x80..<0x800:
        out[n] = UInt8(0xC0 | (scalar >> 6))
        out[n + 1] = UInt8(0x80 | (scalar & 0x3F))
        return 2
    case 0x800..<0x10000:
        out[n] = UInt8(0xE0 | (scalar >> 12))
        out[n + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
        out[n + 2] = UInt8(0x80 | (scalar & 0x3F))
        return 3
    default:
        out[n] = UInt8(0xF0 | (scalar >> 18))
        out[n + 1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
        out[n + 2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
        out[n + 3] = UInt8(0x80 | (scalar & 0x3F))
        return 4
    }
}
