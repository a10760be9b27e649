import ContextModel
import Testing
@testable import Gateway

@Suite("Struct numbers as JSON")
struct JSONNumberTests {
    @Test("Doubles take their canonical spelling", arguments: [
        (25000.0, "25000"), (-25000.0, "-25000"), (0.0, "0"), (-0.0, "0"),
        (9_007_199_254_740_992.0, "9007199254740992"), (-9_007_199_254_740_992.0, "-9007199254740992"),
        (9_007_199_254_740_994.0, "9007199254740994"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
        (0.1, "0.1"), (1.0 / 3.0, "0.3333333333333333"), (100.5, "100.5"), (123456.789, "123456.789"),
        (0.000001, "0.000001"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (-1.5e300, "-1.5e+300"),
        (Double.leastNonzeroMagnitude, "5e-324"), (Double.greatestFiniteMagnitude, "1.7976931348623157e+308"),
        (1.2345678901234568e+20, "123456789012345680000"), (2.5e-5, "0.000025"),
    ])
    func spelling(_ value: Double, _ expected: String) throws {
        var out: [UInt8] = []
        _ = try JSONNumber.append(value, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == expected)
        // RFC 8259 valid, and it reads back as the same double.
        let object = Array(#"{"n":"#.utf8) + out + [UInt8(ascii: "}")]
        #expect(throws: Never.self) { try StrictJSON.readObject(object) }
        #expect(Double(expected) == value)
    }

    @Test("NaN and Infinity have no JSON spelling", arguments: [Double.nan, .infinity, -.infinity])
    func refused(_ value: Double) {
        var out: [UInt8] = []
        #expect(throws: GRPCStatus.self) { try JSONNumber.append(value, to: &out) }
    }
}
