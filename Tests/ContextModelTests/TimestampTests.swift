import Testing
@testable import ContextModel

private func parseError(_ text: String) -> TimestampError? {
    do {
        _ = try Timestamp(rfc3339: text)
        return nil
    } catch {
        return error
    }
}

@Suite("Timestamp parsing")
struct TimestampParseTests {
    @Test("RFC 3339 date-times normalise to the canonical UTC form", arguments: [
        ("2017-04-27T10:18:00Z", "2017-04-27T10:18:00.000Z"),
        ("2017-04-27T10:18:00.000Z", "2017-04-27T10:18:00.000Z"),
        ("2017-04-27T12:18:00.123456789+02:00", "2017-04-27T10:18:00.123Z"),
        ("2016-02-29T00:00:00-00:30", "2016-02-29T00:30:00.000Z"),
        ("2017-04-27t10:18:00z", "2017-04-27T10:18:00.000Z"),
        ("2017-04-27T10:18:00z", "2017-04-27T10:18:00.000Z"),
        ("2017-04-27T10:18:00.1Z", "2017-04-27T10:18:00.100Z"),
        ("2017-04-27T10:18:00.12Z", "2017-04-27T10:18:00.120Z"),
        ("2017-04-27T10:18:00.9999Z", "2017-04-27T10:18:00.999Z"),          // truncated, not rounded
        ("2017-04-27T10:18:59.999999999Z", "2017-04-27T10:18:59.999Z"),
        ("2017-04-27T10:18:00-00:00", "2017-04-27T10:18:00.000Z"),          // RFC 3339 §4.3 unknown offset
        ("2017-04-27T10:18:00+23:59", "2017-04-26T10:19:00.000Z"),
        ("2017-04-27T10:18:00-23:59", "2017-04-28T10:17:00.000Z"),
        // Offsets crossing day, month, year and leap-day boundaries.
        ("2018-01-01T00:30:00+01:00", "2017-12-31T23:30:00.000Z"),
        ("2017-12-31T23:30:00-01:00", "2018-01-01T00:30:00.000Z"),
        ("2016-03-01T00:00:00+00:01", "2016-02-29T23:59:00.000Z"),
        ("2017-03-01T00:00:00+00:01", "2017-02-28T23:59:00.000Z"),
        ("2016-02-29T23:30:00-01:00", "2016-03-01T00:30:00.000Z"),
        ("2017-05-01T01:00:00+05:30", "2017-04-30T19:30:00.000Z"),
        // Gregorian leap years.
        ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000Z"),
        ("1600-02-29T00:00:00Z", "1600-02-29T00:00:00.000Z"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
        // Before the epoch and at the edges of the range.
        ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
        ("1970-01-01T00:00:00+01:00", "1969-12-31T23:00:00.000Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000Z"),
        ("0000-01-01T00:00:00-01:00", "0000-01-01T01:00:00.000Z"),
        ("0000-02-29T00:00:00Z", "0000-02-29T00:00:00.000Z"),              // year 0 is a leap year
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999Z"),
        ("9999-12-31T23:59:59.999+01:00", "9999-12-31T22:59:59.999Z"),
    ])
    func normalises(_ input: String, _ expected: String) throws {
        let t = try Timestamp(rfc3339: input)
        #expect(t.text == expected)
        #expect(try Timestamp(rfc3339: expected) == t)
    }

    @Test("known instants have the right epoch milliseconds", arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("1970-01-01T00:00:00.001Z", 1),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2017-04-27T10:18:00Z", 1_493_288_280_000),
        ("2000-03-01T00:00:00Z", 951_868_800_000),
        ("0000-01-01T00:00:00Z", -62_167_219_200_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
    ])
    func epochMilliseconds(_ input: String, _ expected: Int64) throws {
        #expect(try Timestamp(rfc3339: input).millisecondsSinceEpoch == expected)
    }

    @Test("invalid date-times are refused with a message saying why", arguments: [
        // Calendar.
        ("2017-02-29T00:00:00Z", "timestamp day 29 is out of range for 2017-02"),
        ("1900-02-29T00:00:00Z", "timestamp day 29 is out of range for 1900-02"),
        ("2100-02-29T00:00:00Z", "timestamp day 29 is out of range for 2100-02"),
        ("2016-02-30T00:00:00Z", "timestamp day 30 is out of range for 2016-02"),
        ("2017-04-31T00:00:00Z", "timestamp day 31 is out of range for 2017-04"),
        ("2017-04-00T00:00:00Z", "timestamp day 0 is out of range for 2017-04"),
        ("2017-01-32T00:00:00Z", "timestamp day 32 is out of range for 2017-01"),
        ("2017-00-10T00:00:00Z", "timestamp month 0 is out of range"),
        ("2017-13-10T00:00:00Z", "timestamp month 13 is out of range"),
        // Clock.
        ("2017-04-27T24:00:00Z", "timestamp hour 24 is out of range"),
        ("2017-04-27T10:60:00Z", "timestamp minute 60 is out of range"),
        ("2016-12-31T23:59:60Z", "timestamp second 60 is out of range: leap seconds are not supported"),
        ("2017-04-27T10:18:61Z", "timestamp second 61 is out of range"),
        // Fraction.
        ("2017-04-27T10:18:00.1234567890Z", "timestamp fraction has more than 9 digits, got \"2017-04-27T10:18:00.1234567890Z\""),
        ("2017-04-27T12:00:00.Z", "timestamp fraction after '.' must have 1 to 9 digits, got \"2017-04-27T12:00:00.Z\""),
        ("2017-04-27T12:00:00.-5Z", "timestamp fraction after '.' must have 1 to 9 digits, got \"2017-04-27T12:00:00.-5Z\""),
        // Offset.
        ("2017-04-27T10:18:00+24:00", "timestamp offset hour 24 is out of range"),
        ("2017-04-27T10:18:00+02:60", "timestamp offset minute 60 is out of range"),
        // Out of range once the offset is applied.
        ("0000-01-01T00:00:00+00:01", "timestamp \"0000-01-01T00:00:00+00:01\" falls outside 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z in UTC"),
        ("0000-01-01T00:59:59.999+01:00", "timestamp \"0000-01-01T00:59:59.999+01:00\" falls outside 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z in UTC"),
        ("9999-12-31T23:59:59-00:01", "timestamp \"9999-12-31T23:59:59-00:01\" falls outside 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z in UTC"),
    ])
    func refusesWithMessage(_ input: String, _ message: String) {
        #expect(parseError(input) == TimestampError(message: message))
    }

    @Test("text that is not an RFC 3339 date-time is refused", arguments: [
        "", "garbage", "2017-04-27", "10:18:00Z",
        "2017-04-27T10:18Z",                 // missing seconds
        "2017-04-27T10:18:00",               // missing offset
        "2017-04-27T10:18:00.123",           // missing offset after a fraction
        "2017-04-27 10:18:00Z",              // space instead of T
        "2017-04-27_10:18:00Z",
        "2017-04-27T10:18:00+2:00", "2017-04-27T10:18:00+0200", "2017-04-27T10:18:00+02",
        "2017-04-27T10:18:00+02:00:00", "2017-04-27T10:18:00 +02:00", "2017-04-27T10:18:00UTC",
        "2017-04-27T10:18:00GMT", "2017-04-27T10:18:00ZZ", "2017-04-27T10:18:00Z ", " 2017-04-27T10:18:00Z",
        "17-04-27T10:18:00Z", "2017-4-27T10:18:00Z", "2017-04-7T10:18:00Z", "2017-04-27T1:18:00Z",
        "+2017-04-27T10:18:00Z", "-2017-04-27T10:18:00Z", "12017-04-27T10:18:00Z",
        "2017/04/27T10:18:00Z", "2017-04-27T10.18.00Z", "2017-04-27T10:18:00,5Z",
        "２０１７-04-27T10:18:00Z",           // non-ASCII digits
        "2017-04-27T10:18:00.5e3Z", "2017-04-27T10:18:00.5.5Z",
        "2017-04-27T10:18:00\u{0}Z",
    ])
    func refusesShape(_ input: String) {
        let e = parseError(input)
        #expect(e?.message.hasPrefix("timestamp must be an RFC 3339 date-time such as 2017-04-27T10:18:00.000Z, got \"") == true,
                "got \(String(describing: e))")
    }

    @Test("the shape message quotes the input, escaped and shortened")
    func shapeMessage() {
        #expect(parseError("garbage")?.message
                == "timestamp must be an RFC 3339 date-time such as 2017-04-27T10:18:00.000Z, got \"garbage\"")
        #expect(parseError("a\"b\nc")?.message
                == #"timestamp must be an RFC 3339 date-time such as 2017-04-27T10:18:00.000Z, got "a\"b\nc""#)
        let long = String(repeating: "x", count: 10_000)
        #expect(parseError(long)?.message
                == "timestamp must be an RFC 3339 date-time such as 2017-04-27T10:18:00.000Z, got \"\(String(repeating: "x", count: 64))…\"")
    }

    @Test("every year's month boundaries agree with a day-by-day count", arguments: [0, 2000, 4000, 6000, 8000])
    func calendar(_ firstYear: Int) throws {
        func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }
        func pad(_ v: Int, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: w - s.count) + s
        }
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        // Days from 0000-01-01 to 1970-01-01.
        var day = -719_528
        for y in 0..<firstYear { day += isLeap(y) ? 366 : 365 }
        for y in firstYear..<(firstYear + 2000) {
            for m in 1...12 {
                let length = lengths[m - 1] + (m == 2 && isLeap(y) ? 1 : 0)
                for d in [1, length] {
                    let text = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T00:00:00.000Z"
                    let t = try Timestamp(rfc3339: text)
                    #expect(t.millisecondsSinceEpoch == Int64(day + d - 1) * 86_400_000, "\(text)")
                    #expect(t.text == text)
                }
                #expect(parseError("\(pad(y, 4))-\(pad(m, 2))-\(pad(length + 1, 2))T00:00:00Z") != nil)
                day += length
            }
        }
    }
}

@Suite("Timestamp formatting")
struct TimestampFormatTests {
    @Test("milliseconds render as YYYY-MM-DDTHH:mm:ss.SSSZ", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_000, "1969-12-31T00:00:00.000Z"),
        (-86_400_001, "1969-12-30T23:59:59.999Z"),
        (1_493_288_280_000, "2017-04-27T10:18:00.000Z"),
        (1_493_288_280_123, "2017-04-27T10:18:00.123Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        // Outside the four-digit-year range: clamped so the form stays 24 characters.
        (253_402_300_800_000, "9999-12-31T23:59:59.999Z"),
        (Int64.max, "9999-12-31T23:59:59.999Z"),
        (-62_167_219_200_001, "0000-01-01T00:00:00.000Z"),
        (Int64.min, "0000-01-01T00:00:00.000Z"),
    ])
    func text(_ ms: Int64, _ expected: String) {
        let t = Timestamp(millisecondsSinceEpoch: ms)
        #expect(t.text == expected)
        #expect(t.text.utf8.count == 24)
        var out = Array("\"".utf8)
        t.append(to: &out)
        #expect(out == Array("\"\(expected)".utf8))
    }

    @Test("text parses back to the same instant")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        let range = Timestamp.earliestMilliseconds...Timestamp.latestMilliseconds
        var samples: [Int64] = [range.lowerBound, range.upperBound, 0, -1, 1, 951_782_400_000]
        for _ in 0..<5_000 { samples.append(Int64.random(in: range, using: &generator)) }
        for ms in samples {
            let t = Timestamp(millisecondsSinceEpoch: ms)
            #expect(try Timestamp(rfc3339: t.text) == t, "\(ms) -> \(t.text)")
        }
    }

    @Test("timestamps order and hash by instant")
    func ordering() throws {
        let a = try Timestamp(rfc3339: "2017-04-27T12:18:00+02:00")
        let b = try Timestamp(rfc3339: "2017-04-27T10:18:00Z")
        let c = try Timestamp(rfc3339: "2017-04-27T10:18:00.001Z")
        #expect(a == b)
        #expect(b < c && !(c < b))
        #expect(Set([a, b, c]).count == 2)
        #expect([c, a].sorted() == [a, c])
    }
}
