// The strict JSON reader (`StrictJSON.readObject`) and the contract's validation of a body
// (`Event.parse`), fed arbitrary bytes.
//
// Invariants, beyond "no trap":
// - an accepted document's members point into it: each raw key is a quoted token, ranges are
//   in bounds and in order, keys are unique;
// - the members alone, written back as `{k:v,…}` from their raw bytes, are accepted again
//   with the same keys and values (the raw ranges are exactly the tokens sent);
// - reading is deterministic;
// - a refusal's offset lies inside the input, and its message can be built;
// - an event accepted for a kind and phase is accepted again from its own canonical JSON, and
//   gives the same event (what the gateway sends upstream is what the core accepts).
import ContextModel
import FuzzSupport

private let kinds: [ResourceKind] = [.service, .state, .task]

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    checkReader(input)
    // One kind and phase per input, chosen by its length: all six are reached without
    // spending six parses on every input.
    checkEvent(input, kind: kinds[size % 3], phase: (size / 3) % 2 == 0 ? .start : .end)
    return 0
}

private func checkReader(_ input: [UInt8]) {
    let members: [JSONMember]
    do {
        members = try StrictJSON.readObject(input)
    } catch {
        if case .malformed(let offset, _) = error {
            check(offset >= 0 && offset <= input.count, "malformed offset \(offset) outside \(input.count) bytes")
        }
        _ = error.message
        check(isRefused(input), "refused once, accepted the second time: \(show(input))")
        return
    }
    check((try? StrictJSON.readObject(input)) == members, "two reads differ: \(show(input))")

    var seen = Set<String>()
    var previousEnd = 0
    var rebuilt: [UInt8] = [UInt8(ascii: "{")]
    for (i, m) in members.enumerated() {
        check(seen.insert(m.key).inserted, "duplicate key \(m.key.debugDescription) accepted: \(show(input))")
        check(m.rawKey.lowerBound >= previousEnd && m.rawKey.upperBound <= m.rawValue.lowerBound
              && m.rawValue.upperBound <= input.count && m.rawKey.count >= 2 && !m.rawValue.isEmpty,
              "member ranges out of order or bounds: \(m) in \(show(input))")
        check(input[m.rawKey.lowerBound] == UInt8(ascii: "\"") && input[m.rawKey.upperBound - 1] == UInt8(ascii: "\""),
              "raw key is not a quoted token: \(show(input[m.rawKey]))")
        previousEnd = m.rawValue.upperBound
        if i > 0 { rebuilt.append(UInt8(ascii: ",")) }
        rebuilt += input[m.rawKey]
        rebuilt.append(UInt8(ascii: ":"))
        rebuilt += input[m.rawValue]
    }
    rebuilt.append(UInt8(ascii: "}"))

    let again: [JSONMember]
    do {
        again = try StrictJSON.readObject(rebuilt)
    } catch {
        fatalError("members rebuilt from their raw bytes are refused (\(error.message)): \(show(rebuilt)) from \(show(input))")
    }
    check(again.map(\.key) == members.map(\.key) && again.map(\.value) == members.map(\.value),
          "members rebuilt from their raw bytes read differently: \(show(rebuilt)) from \(show(input))")
    for (a, m) in zip(again, members) {
        check(rebuilt[a.rawValue].elementsEqual(input[m.rawValue]), "raw value moved: \(show(rebuilt)) from \(show(input))")
    }
}

private func isRefused(_ input: [UInt8]) -> Bool {
    (try? StrictJSON.readObject(input)) == nil
}

private func checkEvent(_ input: [UInt8], kind: ResourceKind, phase: EventPhase) {
    let event: Event
    do {
        event = try Event.parse(input, kind: kind, phase: phase)
    } catch {
        check((400...499).contains(error.status), "a body refused with status \(error.status): \(show(input))")
        return
    }
    let canonical = event.canonicalJSONBytes
    do {
        let again = try Event.parse(canonical, kind: kind, phase: phase)
        check(again == event, "the canonical JSON of an event gives another event: \(show(canonical)) from \(show(input))")
        check(again.canonicalJSONBytes == canonical, "canonical JSON is not a fixed point: \(show(canonical))")
    } catch {
        fatalError("the canonical JSON of an accepted \(kind) \(phase) body is refused (\(error.message)): \(show(canonical)) from \(show(input))")
    }
}
