// UTC instants with millisecond precision, read from any RFC 3339 date-time
// and written in the contract's canonical form YYYY-MM-DDTHH:mm:ss.SSSZ.
//
// Calendar arithmetic uses Howard Hinnant's days-from-civil / civil-from-days
// algorithms (proleptic Gregorian calendar), so no Foundation is needed.
// https://howardhinnant.github.io/date_algorithms.html

/// A UTC instant with millisecond precision; the contract's wire form is YYYY-MM-DDTHH:mm:ss.SSSZ.
public struct Timestamp: Sendable, Equatable, Hashable, Comparable {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    /// 0000-01-01T00:00:00.000Z, the earliest instant the wire form can express.
    static let earliestMilliseconds: Int64 = daysFromCivil(year: 0, month: 1, day: 1) * millisecondsPerDay
    /// 9999-12-31T23:59:59.999Z, the latest instant the wire form can express.
    static let latestMilliseconds: Int64 = daysFromCivil(year: 10000, month: 1, day: 1) * millisecondsPerDay - 1

    /// Parses an RFC 3339 `date-time` (§5.6):
    ///
    ///     full-date "T" partial-time time-offset
    ///     YYYY-MM-DD T HH:mm:ss[.fraction] (Z | +HH:MM | -HH:MM)
    ///
    /// `T` and `Z` may be lowercase (§5.6 NOTE); a space instead of `T` is
    /// not accepted. The fraction has 1...9 digits and is truncated to
    /// milliseconds (toward the earlier instant). A leap second (60) is
    /// refused: the instant could not be represented in milliseconds since
    /// the epoch without smearing. The UTC result must lie within years
    /// 0000...9999 so that `text` can always render it.
    public init(rfc3339 text: String) throws(TimestampError) {
        var copy = text
        let result = copy.withUTF8 { utf8 in
            Result { () throws(TimestampError) -> Int64 in
                try Timestamp.parse(utf8, original: text)
            }
        }
        self.millisecondsSinceEpoch = try result.get()
    }

    /// "YYYY-MM-DDTHH:mm:ss.SSSZ", always 24 characters.
    ///
    /// Instants outside 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z
    /// (only reachable through `init(millisecondsSinceEpoch:)`) are clamped
    /// to that range, because the wire form has a four-digit year.
    public var text: String {
        String(unsafeUninitializedCapacity: 24) { buffer in
            write(into: buffer)
            return 24
        }
    }

    /// The same 24 bytes as `text`, unquoted.
    public func append(to out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 24))
        out.withUnsafeMutableBufferPointer { all in
            write(into: UnsafeMutableBufferPointer(rebasing: all[start..<(start + 24)]))
        }
    }

    /// The same 24 bytes, into any JSON output (formatted on the stack, appended once).
    func append<Out: JSONOutput>(to out: inout Out) {
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { raw in
            write(into: raw.bindMemory(to: UInt8.self))
            out.appendBytes(UnsafeRawBufferPointer(raw))
        }
    }

    // MARK: - Formatting

    private func write(into buffer: UnsafeMutableBufferPointer<UInt8>) {
        let ms = min(max(millisecondsSinceEpoch, Timestamp.earliestMilliseconds), Timestamp.latestMilliseconds)
        // Floor division so instants before 1970 land on the right day.
        var days = ms / millisecondsPerDay
        var msOfDay = ms % millisecondsPerDay
        if msOfDay < 0 {
            days -= 1
            msOfDay += millisecondsPerDay
        }
        let date = civilFromDays(days)

        func put(_ value: Int64, width: Int, at offset: Int) {
            var v = value
            for k in stride(from: offset + width - 1, through: offset, by: -1) {
                buffer[k] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: v % 10)
                v /= 10
            }
        }
        put(date.year, width: 4, at: 0)
        buffer[4] = UInt8(ascii: "-")
        put(date.month, width: 2, at: 5)
        buffer[7] = UInt8(ascii: "-")
        put(date.day, width: 2, at: 8)
        buffer[10] = UInt8(ascii: "T")
        put(msOfDay / 3_600_000, width: 2, at: 11)
        buffer[13] = UInt8(ascii: ":")
        put(msOfDay / 60_000 % 60, width: 2, at: 14)
        buffer[16] = UInt8(ascii: ":")
        put(msOfDay / 1000 % 60, width: 2, at: 17)
        buffer[19] = UInt8(ascii: ".")
        put(msOfDay % 1000, width: 3, at: 20)
        buffer[23] = UInt8(ascii: "Z")
    }

    // MARK: - Parsing

    private static func parse(_ s: UnsafeBufferPointer<UInt8>, original: String) throws(TimestampError) -> Int64 {
        func shapeError() -> TimestampError {
            TimestampError(message: "timestamp must be an RFC 3339 date-time such as 2017-04-27T10:18:00.000Z, got \(quoted(original))")
        }
        func isDigit(_ k: Int) -> Bool { k < s.count && s[k] >= UInt8(ascii: "0") && s[k] <= UInt8(ascii: "9") }
        func byte(_ k: Int) -> UInt8 { k < s.count ? s[k] : 0 }
        /// The value of `width` digits at `offset`, or nil if they are not all digits.
        func number(at offset: Int, width: Int) -> Int64? {
            var v: Int64 = 0
            for k in offset..<(offset + width) {
                guard isDigit(k) else { return nil }
                v = v * 10 + Int64(s[k] - UInt8(ascii: "0"))
            }
            return v
        }

        // full-date "T" partial-time, fixed width: YYYY-MM-DDTHH:mm:ss
        guard let year = number(at: 0, width: 4), byte(4) == UInt8(ascii: "-"),
              let month = number(at: 5, width: 2), byte(7) == UInt8(ascii: "-"),
              let day = number(at: 8, width: 2),
              byte(10) == UInt8(ascii: "T") || byte(10) == UInt8(ascii: "t"),
              let hour = number(at: 11, width: 2), byte(13) == UInt8(ascii: ":"),
              let minute = number(at: 14, width: 2), byte(16) == UInt8(ascii: ":"),
              let second = number(at: 17, width: 2)
        else { throw shapeError() }

        // time-secfrac = "." 1*DIGIT; we accept 1...9 digits.
        var k = 19
        var millis: Int64 = 0
        if byte(k) == UInt8(ascii: ".") {
            k += 1
            let fractionStart = k
            while isDigit(k) { k += 1 }
            let digits = k - fractionStart
            if digits == 0 {
                throw TimestampError(message: "timestamp fraction after '.' must have 1 to 9 digits, got \(quoted(original))")
            }
            if digits > 9 {
                throw TimestampError(message: "timestamp fraction has more than 9 digits, got \(quoted(original))")
            }
            // Keep the first three digits (padding with zeros): truncation,
            // never rounding up into the next millisecond.
            for j in 0..<3 {
                millis = millis * 10 + (j < digits ? Int64(s[fractionStart + j] - UInt8(ascii: "0")) : 0)
            }
        }

        // time-offset = "Z" / time-numoffset, time-numoffset = ("+" / "-") HH ":" MM
        var offsetMinutes: Int64 = 0
        switch byte(k) {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            k += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign: Int64 = byte(k) == UInt8(ascii: "-") ? -1 : 1
            guard let offsetHour = number(at: k + 1, width: 2), byte(k + 3) == UInt8(ascii: ":"),
                  let offsetMinute = number(at: k + 4, width: 2)
            else { throw shapeError() }
            guard offsetHour <= 23 else {
                throw TimestampError(message: "timestamp offset hour \(offsetHour) is out of range")
            }
            guard offsetMinute <= 59 else {
                throw TimestampError(message: "timestamp offset minute \(offsetMinute) is out of range")
            }
            offsetMinutes = sign * (offsetHour * 60 + offsetMinute)
            k += 6
        default:
            throw shapeError()
        }
        guard k == s.count else { throw shapeError() }

        // RFC 3339 §5.7 restrictions.
        guard (1...12).contains(month) else {
            throw TimestampError(message: "timestamp month \(month) is out of range")
        }
        guard day >= 1 && day <= daysInMonth(year: year, month: month) else {
            throw TimestampError(message: "timestamp day \(day) is out of range for \(pad(year, 4))-\(pad(month, 2))")
        }
        guard hour <= 23 else { throw TimestampError(message: "timestamp hour \(hour) is out of range") }
        guard minute <= 59 else { throw TimestampError(message: "timestamp minute \(minute) is out of range") }
        if second == 60 {
            throw TimestampError(message: "timestamp second 60 is out of range: leap seconds are not supported")
        }
        guard second <= 59 else { throw TimestampError(message: "timestamp second \(second) is out of range") }

        let local = daysFromCivil(year: year, month: month, day: day) * millisecondsPerDay
            + hour * 3_600_000 + minute * 60_000 + second * 1000 + millis
        // Local time = UTC + offset (RFC 3339 §4.2), so UTC = local - offset.
        let utc = local - offsetMinutes * 60_000
        guard utc >= earliestMilliseconds && utc <= latestMilliseconds else {
            throw TimestampError(message: "timestamp \(quoted(original)) falls outside 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z in UTC")
        }
        return utc
    }
}

/// Why a timestamp was refused; `message` is a one-line human explanation.
public struct TimestampError: Error, Equatable, Sendable {
    public var message: String

    public init(message: String) {
        self.message = message
    }
}

// MARK: - Calendar arithmetic

private let millisecondsPerDay: Int64 = 86_400_000

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's `days_from_civil`).
private func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400                                           // [0, 399]
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1  // [0, 365]
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear  // [0, 146096]
    return era * 146_097 + dayOfEra - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
private func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097                                        // [0, 146096]
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365  // [0, 399]
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // [0, 365]
    let mp = (5 * dayOfYear + 2) / 153                                       // [0, 11], March = 0
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (month <= 2 ? yearOfEra + era * 400 + 1 : yearOfEra + era * 400, month, day)
}

private func isLeapYear(_ year: Int64) -> Bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

private func daysInMonth(year: Int64, month: Int64) -> Int64 {
    switch month {
    case 2: return isLeapYear(year) ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
}

private func pad(_ value: Int64, _ width: Int) -> String {
    let digits = String(value)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// The input quoted for an error message: JSON-escaped so it stays on one
/// line, and cut short if it is long.
private func quoted(_ text: String) -> String {
    let head = text.prefix(64)  // O(64), unlike counting a hostile huge string
    var out: [UInt8] = []
    if head.endIndex < text.endIndex {
        JSONWriter.appendString(String(head) + "…", to: &out)
    } else {
        JSONWriter.appendString(text, to: &out)
    }
    return String(decoding: out, as: UTF8.self)
}
