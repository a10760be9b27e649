// The batch extension's codec (`BatchCodec`), both directions, fed arbitrary bytes: the core
// decodes requests from any client that reaches `/batch`, the gateway decodes the core's
// answers.
//
// Invariants, beyond "no trap":
// - decode → encode → decode gives the same items (those with a valid operation) and results;
// - an item with an invalid operation, id or parameters fails alone with a 400 or 404;
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
    if input.starts(with: Array("CSB3".utf8)) {
        checkResponse(Array("CSR3".utf8) + input.dropFirst(4))
    }
    return 0
}

private func checkRequest(_ input: [UInt8]) {
    let received: [ReceivedBatchItem]
    do {
        received = try BatchCodec.decodeRequest(input)
    } catch {
        _ = error.description
        _ = error.contextError
        return
    }
    check(!received.isEmpty, "an empty batch decoded")
    // An item that names no valid operation fails alone, with an error in the contract's shape.
    for item in received {
        if case .failure(let error) = item.route {
            check(error.status == 400 || error.status == 404, "an item refused with \(error.status)")
            _ = error.jsonBody
        }
    }
    // The items whose route is valid: decode → encode → decode gives them back.
    let items = received.compactMap(\.item)
    guard !items.isEmpty else { return }
    let encoded: [UInt8]
    do {
        encoded = try BatchCodec.encodeRequest(items)
    } catch {
        fatalError("decoded items cannot be encoded again (\(error)): \(show(input))")
    }
    do {
        let again = try BatchCodec.decodeRequest(encoded)
        check(again.map(\.item) == items, "decode → encode → decode changed the items: \(show(input))")
    } catch {
        fatalError("re-encoded items cannot be decoded (\(error)): \(show(input))")
    }
    // maxItems: the count alone decides.
    check((try? BatchCodec.decodeRequest(input, maxItems: received.count)) == received, "maxItems == count refused")
    if received.count > 1 {
        do {
            _ = try BatchCodec.decodeRequest(input, maxItems: received.count - 1)
            fatalError("maxItems below the count accepted")
        } catch {
            check(error == .tooManyItems(count: received.count, limit: received.count - 1), "maxItems below the count: \(error)")
        }
    }
}

/// Whether every result's flags byte is 0 or 1: other bits are not kept.
private func flagsCanonical(_ b: [UInt8]) -> Bool {
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
        let encoded = try BatchCodec.encodeResponse(results)
        let again = try BatchCodec.decodeResponse(encoded)
        check(again == results, "decode → encode → decode changed the results: \(show(input))")
        // A location without U+FFFD was valid UTF-8 as sent, so the bytes come back exactly
        // (a flags byte carries bit 0 only).
        if !results.contains(where: { $0.location?.unicodeScalars.contains("\u{FFFD}") == true }), flagsCanonical(input) {
            check(Array(encoded.readableBytesView) == input, "valid response bytes do not round-trip: \(show(input))")
        }
    } catch {
        fatalError("decoded results do not encode and decode again (\(error)): \(show(input))")
    }
}
