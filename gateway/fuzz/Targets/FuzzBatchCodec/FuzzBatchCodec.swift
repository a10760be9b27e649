// The batch extension's codec (`BatchCodec`), both directions, fed arbitrary bytes: the core
// decodes requests from any client that reaches `/batch`, the gateway decodes the core's
// answers.
//
// Invariants, beyond "no trap":
// - decode → encode → decode gives the same items (results);
// - when every text field was valid UTF-8, encode(decode(bytes)) gives the bytes back;
// - `maxItems` refuses exactly the requests with more items than it;
// - a refusal is a `BatchCodecError` whose description and contract error can be built.
import ContextModel
import FuzzSupport

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    checkRequest(input)
    checkResponse(input)
    // The seeds are requests; the same bytes with the response magic reach the response decoder's depths.
    if input.starts(with: Array("CSB1".utf8)) {
        checkResponse(Array("CSR1".utf8) + input.dropFirst(4))
    }
    return 0
}

private func isValidUTF8(_ b: [UInt8]) -> Bool {
    String(validating: b, as: UTF8.self) != nil
}

private func checkRequest(_ input: [UInt8]) {
    let items: [BatchItem]
    do {
        items = try BatchCodec.decodeRequest(input)
    } catch {
        _ = error.description
        _ = error.contextError
        return
    }
    check(!items.isEmpty, "an empty batch decoded")
    let encoded: [UInt8]
    do {
        encoded = try BatchCodec.encodeRequest(items)
    } catch {
        fatalError("decoded items cannot be encoded again (\(error)): \(show(input))")
    }
    do {
        let again = try BatchCodec.decodeRequest(encoded)
        check(again == items, "decode → encode → decode changed the items: \(show(input))")
    } catch {
        fatalError("re-encoded items cannot be decoded (\(error)): \(show(input))")
    }
    // Text fields replaced with U+FFFD change the bytes; otherwise they round-trip exactly.
    // (An empty tenant or auth is "none" both ways, so it round-trips too.) The encoder writes
    // version 2 only; a key-flags byte carries bit 0 only.
    if input.starts(with: Array("CSB2".utf8)), allTextValid(input) {
        check(encoded == input, "valid request bytes do not round-trip: \(show(input))")
    }
    // maxItems: the count alone decides.
    check((try? BatchCodec.decodeRequest(input, maxItems: items.count)) == items, "maxItems == count refused")
    if items.count > 1 {
        do {
            _ = try BatchCodec.decodeRequest(input, maxItems: items.count - 1)
            fatalError("maxItems below the count accepted")
        } catch {
            check(error == .tooManyItems(count: items.count, limit: items.count - 1), "maxItems below the count: \(error)")
        }
    }
}

/// Whether every result's flags byte (version 2) is 0 or 1: other bits are not kept.
private func flagsCanonical(_ b: [UInt8], _ version: Int) -> Bool {
    guard version == 2 else { return true }
    var i = 8
    func u16() -> Int { defer { i += 2 }; return Int(b[i]) << 8 | Int(b[i + 1]) }
    func u32() -> Int { defer { i += 4 }; return Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
    let count = Int(b[4]) << 24 | Int(b[5]) << 16 | Int(b[6]) << 8 | Int(b[7])
    for _ in 0..<count {
        i += 2           // status
        i += u16()       // location
        i += 2           // retry_after
        if b[i] > 1 { return false }
        i += 1
        i += u32()       // body
    }
    return true
}

/// Whether every text field of a request that decoded is valid UTF-8 (walks the same layout).
private func allTextValid(_ b: [UInt8]) -> Bool {
    var i = 8
    func u16() -> Int { defer { i += 2 }; return Int(b[i]) << 8 | Int(b[i + 1]) }
    func u32() -> Int { defer { i += 4 }; return Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
    let count = Int(b[4]) << 24 | Int(b[5]) << 16 | Int(b[6]) << 8 | Int(b[7])
    for _ in 0..<count {
        i += 1
        for _ in 0..<4 {  // target, tenant, auth, key
            let n = u16()
            if !isValidUTF8(Array(b[i..<i + n])) { return false }
            i += n
        }
        if b[i] > 1 { return false }  // key flags: bits other than 0 are not kept
        i += 1
        i += u32()
    }
    return true
}

private func checkResponse(_ input: [UInt8]) {
    let results: [BatchResult]
    do {
        results = try BatchCodec.decodeResponse(input)
    } catch {
        _ = error.description
        _ = error.contextError
        return
    }
    check(!results.isEmpty, "an empty response decoded")
    do {
        let version = input[3] == UInt8(ascii: "1") ? 1 : 2
        let encoded = try BatchCodec.encodeResponse(results, version: version)
        let again = try BatchCodec.decodeResponse(encoded)
        check(again == results, "decode → encode → decode changed the results: \(show(input))")
        // A location without U+FFFD was valid UTF-8 as sent, so the bytes come back exactly
        // (a flags byte carries bit 0 only).
        if !results.contains(where: { $0.location?.unicodeScalars.contains("\u{FFFD}") == true }), flagsCanonical(input, version) {
            check(encoded == input, "valid response bytes do not round-trip: \(show(input))")
        }
    } catch {
        fatalError("decoded results do not encode and decode again (\(error)): \(show(input))")
    }
}
