import Testing
@testable import ContextModel

// MARK: - Helpers

private func read(_ text: String, limits: JSONLimits = .defaults) throws(JSONReadError) -> [JSONMember] {
    try StrictJSON.readObject(Array(text.utf8), limits: limits)
}

/// The error (if any) produced by reading `bytes`.
private func error(of bytes: [UInt8], limits: JSONLimits = .defaults) -> JSONReadError? {
    do {
        _ = try StrictJSON.readObject(bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

private func error(of text: String, limits: JSONLimits = .defaults) -> JSONReadError? {
    error(of: Array(text.utf8), limits: limits)
}

/// The kind of refusal a table row expects; `malformed` ignores offset and reason.
enum StrictJSONRefusal: Sendable, CustomTestStringConvertible {
    case malformed
    case tooDeep(Int)
    case duplicate(String)
    case notAnObject

    func matches(_ error: JSONReadError?) -> Bool {
        switch (self, error) {
        case (.malformed, .malformed?): return true
        case (.tooDeep(let a), .tooDeep(let b)?): return a == b
        case (.duplicate(let a), .duplicateKey(let b)?): return a == b
        case (.notAnObject, .notAnObject?): return true
        default: return false
        }
    }

    var testDescription: String {
        switch self {
        case .malformed: return "malformed"
        case .tooDeep(let n): return "tooDeep(\(n))"
        case .duplicate(let k): return "duplicate(\(k))"
        case .notAnObject: return "notAnObject"
        }
    }
}

/// Text of `bytes[range]`, for checking raw ranges.
private func slice(_ text: String, _ range: Range<Int>) -> String {
    String(decoding: Array(text.utf8)[range], as: UTF8.self)
}

private func nested(_ depth: Int) -> String {
    // `depth` levels in total: the top-level object plus depth-1 arrays.
    "{\"a\":" + String(repeating: "[", count: depth - 1) + String(repeating: "]", count: depth - 1) + "}"
}

// MARK: - Accepted documents

@Suite("StrictJSON accepts valid documents")
struct StrictJSONAcceptTests {
    @Test("documents that follow every rule are accepted", arguments: [
        // Whitespace: space, tab, LF, CR, anywhere between tokens.
        "{}",
        " {} ",
        "\t\n\r {}\r\n\t ",
        "{ \"a\" : 1 , \"b\" : [ ] , \"c\" : { } }",
        "{\n\t\"a\"\r\n:\t[\n1\n,\n2\n]\n}",
        // Literals.
        "{\"a\":true,\"b\":false,\"c\":null}",
        "{\"a\":[true,false,null]}",
        // Numbers, RFC 8259 §6.
        "{\"a\":0}", "{\"a\":-0}", "{\"a\":-1}", "{\"a\":10}", "{\"a\":1.5}", "{\"a\":0.0}",
        "{\"a\":1e5}", "{\"a\":1E5}", "{\"a\":1e+5}", "{\"a\":1e-5}", "{\"a\":0e0}",
        "{\"a\":-0.5E-10}", "{\"a\":123456789012345678901234567890}", "{\"a\":1.0e+2}",
        "{\"a\":[0,-0,1,-1.25e3]}",
        // Strings: every escape, hex in both cases, raw UTF-8 up to U+10FFFF.
        #"{"a":"\"\\\/\b\f\n\r\t"}"#,
        #"{"a":"\u0041\u00e9\u00E9\uabcd\uABCD\u0000"}"#,
        #"{"a":"\uD83D\uDE00 \ud83d\ude00 \uDBFF\uDFFF"}"#,
        "{\"a\":\"é € 😀 \u{10FFFF} \u{FFFF} \u{D7FF} \u{E000}\"}",
        "{\"a\":\"\u{7F}\"}",  // DEL is not a control character for JSON
        "{\"\":\"\"}",
        "{\"é\":1,\"e\":2}",
        // Same keys in different objects are not duplicates.
        "{\"a\":{\"a\":1},\"b\":{\"a\":2}}",
        "{\"x\":[{\"a\":1},{\"a\":2}],\"a\":{\"x\":{\"x\":1}}}",
        "{\"a\":1,\"A\":2,\"a \":3,\"ab\":4}",
        // Keys equal as decoded bytes only count; escaped distinct keys pass.
        #"{"x":{"\u0061":1,"\u0062":2,"c":3}}"#,
        #"{"x":[{"\u0061\n":1},{"\u0061\n":1,"a":2}],"y":{"\ud83d\ude00":{"\ud83d\ude00":0}}}"#,
    ])
    func accepts(_ text: String) throws {
        _ = try read(text)
    }

    @Test("valid raw UTF-8 sequences at the boundaries are accepted", arguments: [
        [0xC2, 0x80], [0xDF, 0xBF],                          // U+0080, U+07FF
        [0xE0, 0xA0, 0x80], [0xEC, 0xBF, 0xBF],              // U+0800, U+CFFF
        [0xED, 0x80, 0x80], [0xED, 0x9F, 0xBF],              // U+D000, U+D7FF
        [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],              // U+E000, U+FFFF
        [0xF0, 0x90, 0x80, 0x80], [0xF3, 0xBF, 0xBF, 0xBF],  // U+10000, U+FFFFF
        [0xF4, 0x80, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],  // U+100000, U+10FFFF
    ] as [[UInt8]])
    func acceptsUTF8(_ sequence: [UInt8]) throws {
        let doc = Array("{\"a\":\"".utf8) + sequence + Array("\"}".utf8)
        let members = try StrictJSON.readObject(doc)
        #expect(members.first?.value == .string(String(decoding: sequence, as: UTF8.self)))
    }

    @Test("members come back in the order sent")
    func keyOrder() throws {
        let members = try read(#"{"z":1,"a":2,"m":3,"b":{"y":1,"c":2}}"#)
        #expect(members.map(\.key) == ["z", "a", "m", "b"])
    }

    @Test("scalars are classified and decoded")
    func scalars() throws {
        let members = try read(#"{"s":"x\ty","i":-42,"max":9223372036854775807,"min":-9223372036854775808,"over":9223372036854775808,"under":-9223372036854775809,"f":1.5,"e":1e3,"t":true,"n":null,"o":{},"a":[]}"#)
        #expect(members.map(\.value) == [
            .string("x\ty"), .integer(-42), .integer(.max), .integer(.min), .bigInteger, .bigInteger,
            .number, .number, .bool(true), .null, .object, .array,
        ])
    }

    @Test("an empty document and every non-object document are notAnObject", arguments: [
        "", "   ", "\n\t\r ", "[]", "[1,2]", " [ {} ] ", "\"a\"", "1", "-0.5", "true", "false", "null",
    ])
    func notAnObject(_ text: String) {
        #expect(error(of: text) == .notAnObject)
    }
}

// MARK: - Raw ranges

@Suite("StrictJSON raw ranges")
struct StrictJSONRawRangeTests {
    @Test("number tokens keep their raw bytes and class", arguments: [
        ("12345678901234567890", JSONScalar.bigInteger),
        ("-12345678901234567890", .bigInteger),
        ("1.0e+2", .number),
        ("-0", .integer(0)),
        ("0", .integer(0)),
        ("-9223372036854775808", .integer(.min)),
    ])
    func numbers(_ token: String, _ expected: JSONScalar) throws {
        let text = "{ \"n\" : \(token) }"
        let members = try read(text)
        #expect(members.count == 1)
        #expect(members[0].value == expected)
        #expect(slice(text, members[0].rawValue) == token)
        #expect(slice(text, members[0].rawKey) == "\"n\"")
    }

    @Test("escaped and unescaped spellings decode alike but keep their own raw bytes")
    func escapedString() throws {
        let escaped = #"{"caf\u00e9":"caf\u00e9"}"#
        let plain = #"{"café":"café"}"#
        let a = try read(escaped)[0]
        let b = try read(plain)[0]
        #expect(a.key == "café" && b.key == "café")
        #expect(a.value == .string("café") && b.value == .string("café"))
        #expect(slice(escaped, a.rawKey) == #""caf\u00e9""#)
        #expect(slice(escaped, a.rawValue) == #""caf\u00e9""#)
        #expect(slice(plain, b.rawKey) == "\"café\"")
        #expect(slice(plain, b.rawValue) == "\"café\"")
        #expect(a.rawValue.count == 11 && b.rawValue.count == 7)
    }

    @Test("nested values span exactly their brackets, inner whitespace included")
    func nestedValue() throws {
        let text = #"{"a": [1, {"b": 2}] , "c" :{ "d" : [ ] }}"#
        let members = try read(text)
        #expect(members.count == 2)
        #expect(members[0].value == .array)
        #expect(slice(text, members[0].rawValue) == #"[1, {"b": 2}]"#)
        #expect(members[1].value == .object)
        #expect(slice(text, members[1].rawValue) == #"{ "d" : [ ] }"#)
        #expect(members[1].rawKey == 22..<25)
    }

    @Test("the raw-buffer entry point gives the same members")
    func rawBuffer() throws {
        let bytes = Array(#"{"a":[1],"b":"x"}"#.utf8)
        let viaArray = try StrictJSON.readObject(bytes)
        let viaBuffer = try bytes.withUnsafeBytes { raw in try StrictJSON.readObject(raw) }
        #expect(viaArray == viaBuffer)
        #expect(viaArray == [
            JSONMember(key: "a", rawKey: 1..<4, rawValue: 5..<8, value: .array),
            JSONMember(key: "b", rawKey: 9..<12, rawValue: 13..<16, value: .string("x")),
        ])
    }
}

// MARK: - Refused documents

@Suite("StrictJSON refuses invalid documents")
struct StrictJSONRefuseTests {
    @Test("syntax errors are malformed", arguments: [
        // Whitespace other than space, tab, LF, CR; trailing garbage.
        "{}\u{0C}", "\u{0B}{}", "\u{A0}{}", "{}\u{0}", "{\"a\":\u{0C}1}", "{} x", "{}{}", "{},", "{}]",
        // Literals are exactly true, false, null.
        "{\"a\":True}", "{\"a\":tru}", "{\"a\":nul}", "{\"a\":truex}", "{\"a\":undefined}", "{\"a\":NULL}",
        "{\"a\":t}", "{\"a\":fals",
        // Numbers, RFC 8259 §6 grammar.
        "{\"a\":01}", "{\"a\":-01}", "{\"a\":00}", "{\"a\":+1}", "{\"a\":.5}", "{\"a\":1.}", "{\"a\":1.e5}",
        "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":1E-}", "{\"a\":-}", "{\"a\":--1}", "{\"a\":1..2}", "{\"a\":NaN}",
        "{\"a\":Infinity}", "{\"a\":-Infinity}", "{\"a\":0x1F}", "{\"a\":1 2}", "{\"a\":1e5.5}",
        // Strings.
        "{\"a\":\"\u{1}\"}", "{\"a\":\"\t\"}", "{\"a\":\"\n\"}", "{\"a\":\"\u{1F}\"}", "{\"a\u{0}\":1}",
        #"{"a":"\x"}"#, #"{"a":"\U0041"}"#, #"{"a":"\'"}"#, #"{"a":"\u12"}"#, #"{"a":"\u12G4"}"#,
        #"{"a":"\u"}"#, #"{"a":"\"#, #"{"a":"abc"#, #"{"a":"abc}"#,
        #"{"a":"\uD800"}"#, #"{"a":"\uD800a"}"#, #"{"a":"\uD800\uD800"}"#, #"{"a":"\uDC00"}"#,
        #"{"a":"\uDFFF\uD800"}"#, #"{"a":"\uD800\n"}"#, #"{"a":"\uD800\u0041"}"#, #"{"a":"\uDBFF\uE000"}"#,
        #"{"\uD800":1}"#, #"{"x":{"\uDC00":1}}"#,
        // Structure.
        "{'a':1}", "{a:1}", "{1:2}", "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":}", "{\"a\"}",
        "{\"a\":1 \"b\":2}", "{\"a\":[1 2]}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":1]", "{\"a\":[1}",
        "{", "{\"a\":1", "{\"a\"", "{\"a\":", "{\"a\":[", "[1,]", "[", "]", "}", "{\"a\"::1}", "{\"a\":1,,\"b\":2}",
        // Documents that are not JSON at all.
        "x", "'a'", "undefined",
    ])
    func malformed(_ text: String) {
        let e = error(of: text)
        #expect(StrictJSONRefusal.malformed.matches(e), "got \(String(describing: e))")
    }

    @Test("invalid UTF-8 is malformed", arguments: [
        [0xC0, 0x80], [0xC1, 0xBF],                              // overlong 2-byte (C0, C1)
        [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],                  // overlong 3-byte
        [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],      // overlong 4-byte
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],                  // encoded surrogates
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],      // above U+10FFFF
        [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE], [0xFF],          // never valid
        [0x80], [0xBF], [0x41, 0x80, 0x41],                      // stray continuation bytes
        [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],                // truncated before the quote
        [0xC3, 0x41], [0xE2, 0x41, 0x82], [0xF0, 0x9F, 0x41, 0x80], // continuation missing
    ] as [[UInt8]])
    func invalidUTF8(_ sequence: [UInt8]) {
        let inValue = Array("{\"a\":\"".utf8) + sequence + Array("\"}".utf8)
        let inKey = Array("{\"".utf8) + sequence + Array("\":1}".utf8)
        let inNestedKey = Array("{\"x\":{\"".utf8) + sequence + Array("\":1}}".utf8)
        #expect(StrictJSONRefusal.malformed.matches(error(of: inValue)))
        #expect(StrictJSONRefusal.malformed.matches(error(of: inKey)))
        #expect(StrictJSONRefusal.malformed.matches(error(of: inNestedKey)))
    }

    @Test("a string cut off inside a multi-byte sequence at the end of input is malformed")
    func truncatedAtEnd() {
        #expect(StrictJSONRefusal.malformed.matches(error(of: Array("{\"a\":\"".utf8) + [0xF0, 0x9F])))
    }

    @Test("special bytes are found at every position of the word-at-a-time scan", arguments: 0..<20)
    func everyPosition(_ position: Int) throws {
        let prefix = Array("{\"k\":\"".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: position)
        let suffix = [UInt8](repeating: UInt8(ascii: "b"), count: 11) + Array("\"}".utf8)
        let at = prefix.count
        for control in UInt8(0)..<0x20 {
            #expect(error(of: prefix + [control] + suffix)
                    == .malformed(offset: at, reason: "control character U+00\(control < 0x10 ? "0" : "")\(String(control, radix: 16, uppercase: true)) must be escaped in a string"))
        }
        #expect(error(of: prefix + [0xFF] + suffix) == .malformed(offset: at, reason: "invalid UTF-8 byte 0xFF"))
        #expect(error(of: prefix + Array(#"\q"#.utf8) + suffix) == .malformed(offset: at, reason: "invalid escape sequence in string"))
        let quoted = try StrictJSON.readObject(prefix + Array(#"\"é"#.utf8) + suffix)
        #expect(quoted.first?.value == .string(String(repeating: "a", count: position) + "\"é" + String(repeating: "b", count: 11)))
        // The string ends at the first quote, whatever its position.
        let ended = try StrictJSON.readObject(prefix + Array("\",\"z\":\"".utf8) + suffix)
        #expect(ended.first?.value == .string(String(repeating: "a", count: position)))
        #expect(ended.last?.value == .string(String(repeating: "b", count: 11)))
    }

    @Test("a UTF-8 byte order mark is malformed")
    func byteOrderMark() {
        #expect(error(of: [0xEF, 0xBB, 0xBF] + Array("{}".utf8)) == .malformed(offset: 0, reason: "a byte order mark is not allowed"))
        #expect(StrictJSONRefusal.malformed.matches(error(of: Array(" ".utf8) + [0xEF, 0xBB, 0xBF] + Array("{}".utf8))))
        #expect(StrictJSONRefusal.malformed.matches(error(of: Array("{}".utf8) + [0xEF, 0xBB, 0xBF])))
    }

    @Test("non-ASCII bytes outside strings are malformed")
    func nonASCIIOutsideStrings() {
        #expect(StrictJSONRefusal.malformed.matches(error(of: "{\"a\":1é}")))
        #expect(StrictJSONRefusal.malformed.matches(error(of: "{\"a\":[1,\u{3000}2]}")))
    }

    @Test("malformed errors carry the byte offset of the problem", arguments: [
        ("{\"a\" 1}", 5, "expected ':' after object key"),
        ("{\"a\":1,}", 7, "expected a string key"),
        ("{\"a\":01}", 6, "leading zeros are not allowed in numbers"),
        ("{} x", 3, "unexpected data after the JSON value"),
        ("{\"a\":1 \"b\":2}", 7, "expected ',' or '}' after object member"),
        ("{\"a\":[1 2]}", 8, "expected ',' or ']' after array element"),
        (#"{"a":"\uD800"}"#, 6, #"high surrogate \uD800 is not followed by a low surrogate"#),
        (#"{"a":"x\uDC00"}"#, 7, #"low surrogate \uDC00 without a preceding high surrogate"#),
        ("{\"a\":\"\u{1}\"}", 6, "control character U+0001 must be escaped in a string"),
        ("{\"a\":1.}", 7, "expected a digit after the decimal point"),
        ("{\"a\":1e}", 7, "expected a digit in the exponent"),
        ("{\"a\":", 5, "unexpected end of input, expected a value"),
        ("{\"a\":\"abc", 9, "unterminated string"),
        ("{\"a\":nul}", 5, "invalid literal, expected 'null'"),
    ])
    func offsets(_ text: String, _ offset: Int, _ reason: String) {
        #expect(error(of: text) == .malformed(offset: offset, reason: reason))
    }

    @Test("invalid UTF-8 is reported at the offending sequence")
    func utf8Offset() {
        let doc = Array("{\"ab\":\"xy".utf8) + [0xC0, 0x80] + Array("\"}".utf8)
        #expect(error(of: doc) == .malformed(offset: 9, reason: "invalid UTF-8 byte 0xC0"))
    }

    @Test("error messages are one readable line")
    func messages() {
        #expect(JSONReadError.malformed(offset: 17, reason: "expected ':' after object key").message
                == "malformed JSON at byte 17: expected ':' after object key")
        #expect(JSONReadError.duplicateKey("a").message == "duplicate key \"a\"")
        #expect(JSONReadError.duplicateKey("a\nb\"").message == #"duplicate key "a\nb\"""#)
        #expect(JSONReadError.tooDeep(limit: 64).message == "JSON nesting deeper than 64")
        #expect(JSONReadError.tooLarge(limit: 1_048_576).message == "body larger than 1048576 bytes")
        #expect(JSONReadError.notAnObject.message == "JSON body must be an object")
    }
}

// MARK: - Duplicate keys

@Suite("StrictJSON duplicate keys")
struct StrictJSONDuplicateTests {
    /// An object text with `count` distinct keys k0...k(count-1), then `extra` appended.
    static func wide(_ count: Int, extra: String = "") -> String {
        "{" + (0..<count).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + extra + "}"
    }

    static let duplicateCases: [(String, String)] = [
        (#"{"a":1,"a":2}"#, "a"),
        (#"{"a":1,"b":2,"a":3}"#, "a"),
        (#"{"a":1,"\u0061":2}"#, "a"),
        (#"{"\u0061":1,"a":2}"#, "a"),
        (#"{"caf\u00e9":1,"café":2}"#, "café"),
        (#"{"😀":1,"\ud83d\ude00":2}"#, "😀"),
        (#"{"":1,"":2}"#, ""),
        (#"{"x":{"b":1,"b":2}}"#, "b"),
        (#"{"x":{"\u0062":1,"b":2}}"#, "b"),
        (#"{"x":{"b":1,"\u0062":2}}"#, "b"),
        (#"{"x":{"\n":1,"\u000a":2}}"#, "\n"),
        (#"{"x":{"\ud83d\ude00\n":1,"😀\u000a":2}}"#, "😀\n"),
        (#"{"x":{"\u00e9t\u00e9":{"a":1},"b":2,"été":3}}"#, "été"),
        (#"{"x":[{"k":1},{"k":1,"k":1}]}"#, "k"),
        (#"{"x":{"y":{"z":{"q":1,"q":2}}}}"#, "q"),
        (#"{"x":{"a":{"b":1},"b":2,"a":3}}"#, "a"),
        // Top-level keys are compared as Swift Strings (canonical equivalence).
        ("{\"\u{E9}\":1,\"e\u{301}\":2}", "e\u{301}"),
        // Objects large enough to use the hashed path.
        (wide(40, extra: #","k17":0"#), "k17"),
        (wide(17, extra: #","k0":0"#), "k0"),
        (#"{"x":"# + wide(40, extra: #","k39":0"#) + "}", "k39"),
        (#"{"x":"# + wide(17, extra: #","\u006b16":0"#) + "}", "k16"),
        (#"{"x":["# + wide(100) + "," + wide(100, extra: #","k99":0"#) + "]}", "k99"),
    ]

    @Test("duplicate keys are refused at every depth, compared after decoding", arguments: duplicateCases)
    func duplicates(_ text: String, _ key: String) {
        let e = error(of: text)
        #expect(StrictJSONRefusal.duplicate(key).matches(e), "got \(String(describing: e))")
    }

    @Test("wide objects with distinct keys are accepted at every depth", arguments: [16, 17, 100, 1000])
    func wideDistinct(_ count: Int) throws {
        let top = try read(Self.wide(count))
        #expect(top.count == count)
        #expect(top.last?.value == .integer(Int64(count - 1)))
        let inner = try read(#"{"x":["# + Self.wide(count) + "," + Self.wide(count) + "],\"y\":" + Self.wide(count) + "}")
        #expect(inner.map(\.key) == ["x", "y"])
    }

    @Test("nested keys are compared code point by code point (RFC 8259 §8.3)")
    func nestedCanonicalEquivalence() throws {
        // Not byte-equal, so not duplicates below the top level.
        _ = try read("{\"x\":{\"\u{E9}\":1,\"e\u{301}\":2}}")
    }
}

// MARK: - Limits

@Suite("StrictJSON limits")
struct StrictJSONLimitTests {
    @Test("nesting up to maxDepth is accepted and one more is tooDeep", arguments: [
        (#"{"a":{"b":{}}}"#, 3, nil as StrictJSONRefusal?),
        (#"{"a":{"b":{"c":1}}}"#, 3, nil),
        (#"{"a":[[]]}"#, 3, nil),
        (#"{"a":[[1,{}]]}"#, 4, nil),
        (#"{"a":{"b":{"c":{}}}}"#, 3, .tooDeep(3)),
        (#"{"a":[[[]]]}"#, 3, .tooDeep(3)),
        (#"{"a":[[{"b":1}]]}"#, 3, .tooDeep(3)),
        ("{}", 1, nil),
        (#"{"a":[]}"#, 1, .tooDeep(1)),
        ("[[[]]]", 3, .notAnObject),
        ("[[[[]]]]", 3, .tooDeep(3)),
    ])
    func depth(_ text: String, _ maxDepth: Int, _ expected: StrictJSONRefusal?) {
        let e = error(of: text, limits: JSONLimits(maxDepth: maxDepth))
        if let expected {
            #expect(expected.matches(e), "got \(String(describing: e))")
        } else {
            #expect(e == nil)
        }
    }

    @Test("the default depth is 64")
    func defaultDepth() {
        #expect(JSONLimits.defaults == JSONLimits(maxBytes: 1 << 20, maxDepth: 64))
        #expect(error(of: nested(64)) == nil)
        #expect(error(of: nested(65)) == .tooDeep(limit: 64))
    }

    @Test("100,000 nested '[' fail fast with tooDeep")
    func hostileNesting() {
        let bytes = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        let clock = ContinuousClock()
        var e: JSONReadError?
        let elapsed = clock.measure { e = error(of: bytes) }
        #expect(e == .tooDeep(limit: 64))
        #expect(elapsed < .seconds(1))
        // Same with a caller-chosen huge depth: no recursion to overflow.
        #expect(error(of: bytes, limits: JSONLimits(maxDepth: 10_000)) == .tooDeep(limit: 10_000))
        let objects = Array(String(repeating: "{\"a\":", count: 100_000).utf8)
        #expect(error(of: objects, limits: JSONLimits(maxDepth: 10_000)) == .tooDeep(limit: 10_000))
    }

    @Test("1 MiB of '[' is refused without a crash, whatever maxDepth")
    func megabyteOfBrackets() {
        let bytes = [UInt8](repeating: UInt8(ascii: "["), count: 1 << 20)
        #expect(error(of: bytes) == .tooDeep(limit: 64))
        #expect(error(of: bytes, limits: JSONLimits(maxDepth: 10_000)) == .tooDeep(limit: 10_000))
        // A depth limit above the size limit: the frame stack, not the Swift stack, grows.
        #expect(error(of: bytes, limits: JSONLimits(maxDepth: 1 << 21))
                == .malformed(offset: 1 << 20, reason: "unexpected end of input, expected a value"))
    }

    @Test("a valid document 10,000 levels deep is accepted when allowed")
    func deepValid() {
        #expect(error(of: nested(10_000), limits: JSONLimits(maxDepth: 10_000)) == nil)
        #expect(error(of: nested(10_001), limits: JSONLimits(maxDepth: 10_000)) == .tooDeep(limit: 10_000))
    }

    @Test("a body of exactly maxBytes is parsed and one byte more is tooLarge")
    func size() throws {
        let limit = 1 << 20
        let padding = String(repeating: "x", count: limit - 8)
        let exact = Array("{\"a\":\"\(padding)\"}".utf8)
        #expect(exact.count == limit)
        let members = try StrictJSON.readObject(exact)
        #expect(members.first?.rawValue.count == limit - 6)
        #expect(error(of: exact + [UInt8(ascii: " ")]) == .tooLarge(limit: limit))
    }

    @Test("the size check comes before parsing")
    func sizeFirst() {
        // Garbage that would be malformed is still reported as tooLarge.
        let garbage = [UInt8](repeating: 0xFF, count: (1 << 20) + 1)
        #expect(error(of: garbage) == .tooLarge(limit: 1 << 20))
        #expect(error(of: "{\"a\":1}", limits: JSONLimits(maxBytes: 6)) == .tooLarge(limit: 6))
        _ = garbage.withUnsafeBytes { raw in
            #expect(throws: JSONReadError.tooLarge(limit: 1 << 20)) { try StrictJSON.readObject(raw) }
        }
    }
}

// MARK: - JSONWriter

@Suite("JSONWriter")
struct JSONWriterTests {
    static let controlCharacters: [String] = (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }

    static let roundTripStrings: [String] = controlCharacters + [
        "", "a", "hello world", "\"", "\\", "/", "\\\"", "\"\\\"", "\u{7F}", "a\"b\\c\nd\te",
        controlCharacters.joined(), String((0..<0x80).map { Character(UnicodeScalar(UInt8($0))) }),
        "café", "e\u{301}", "naïve résumé", "日本語", "😀", "👩‍👩‍👧‍👦", "🇫🇷", "\u{10FFFF}", "\u{FFFF}",
        "\u{FEFF}", "\u{2028}\u{2029}", "\u{0}\u{0}", "x\u{0}y", "\\u0041", "</script>",
        String(repeating: "ab\"c\u{1}😀", count: 500),
    ]

    @Test("readObject gives back every string written by appendString", arguments: roundTripStrings)
    func roundTrip(_ s: String) throws {
        var doc = Array("{\"k\":".utf8)
        JSONWriter.appendString(s, to: &doc)
        doc.append(UInt8(ascii: "}"))
        let members = try StrictJSON.readObject(doc)
        #expect(members.count == 1)
        #expect(members[0].value == .string(s))
        // Canonical bytes, not just canonical equivalence.
        if case .string(let back) = members[0].value {
            #expect(Array(back.utf8) == Array(s.utf8))
        }

        // And as a key.
        var keyed: [UInt8] = [UInt8(ascii: "{")]
        JSONWriter.appendKey(s, to: &keyed)
        keyed.append(contentsOf: Array("1}".utf8))
        #expect(try StrictJSON.readObject(keyed).first?.key == s)
    }

    @Test("strings use the canonical escapes", arguments: [
        ("", #""""#),
        ("abc", #""abc""#),
        ("\"", #""\"""#),
        ("\\", #""\\""#),
        ("/", #""/""#),
        ("\u{8}\u{C}\n\r\t", #""\b\f\n\r\t""#),
        ("\u{0}", #""\u0000""#),
        ("\u{1}", #""\u0001""#),
        ("\u{B}", #""\u000b""#),
        ("\u{1F}", #""\u001f""#),
        ("\u{1A}x\u{1B}", #""\u001ax\u001b""#),
        ("\u{7F}", "\"\u{7F}\""),
        ("é😀", "\"é😀\""),
        ("\u{2028}", "\"\u{2028}\""),
    ])
    func escapes(_ s: String, _ expected: String) {
        var out: [UInt8] = []
        JSONWriter.appendString(s, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
        #expect(out == Array(expected.utf8))
    }

    @Test("substrings are written like strings and appends keep what was there")
    func substrings() {
        let s = "[a\"b\nc]"
        let sub = s.dropFirst().dropLast()
        var out = Array("x".utf8)
        JSONWriter.appendString(sub, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"x"a\"b\nc""#)
    }

    @Test("appendKey writes a quoted key and a colon")
    func keys() {
        var out: [UInt8] = [UInt8(ascii: "{")]
        JSONWriter.appendKey("a\"b", to: &out)
        JSONWriter.appendInt(1, to: &out)
        out.append(UInt8(ascii: "}"))
        #expect(String(decoding: out, as: UTF8.self) == #"{"a\"b":1}"#)
    }

    @Test("appendInt writes plain decimals", arguments: [
        (Int64(0), "0"), (-1, "-1"), (1, "1"), (9, "9"), (10, "10"), (-10, "-10"), (1_000_000, "1000000"),
        (Int64.max, "9223372036854775807"), (Int64.min, "-9223372036854775808"),
        (Int64.min + 1, "-9223372036854775807"),
    ])
    func ints(_ v: Int64, _ expected: String) throws {
        var out = Array("[".utf8)
        JSONWriter.appendInt(v, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "[" + expected)
        // And the reader agrees.
        var doc = Array("{\"n\":".utf8)
        JSONWriter.appendInt(v, to: &doc)
        doc.append(UInt8(ascii: "}"))
        #expect(try StrictJSON.readObject(doc).first?.value == .integer(v))
    }
}
