import ContextModel
import Testing
@testable import Gateway

/// One request of GoldenVectors.swift: protobuf bytes made by Python, and what the codec must
/// make of them.
struct RequestVector: Sendable, CustomTestStringConvertible {
    enum Expected: Sendable {
        /// The REST call: its route and canonical JSON body (nil: no body).
        case call(route: RESTRoute, json: String?)
        /// A status; a nil message is not compared.
        case status(GRPCStatusCode, message: String?)
        /// INVALID_ARGUMENT (or what the model's error maps to) with exactly the message the
        /// model gives a REST client for `restBody`, after `prefix`.
        case modelError(kind: ResourceKind, phase: EventPhase, restBody: String, prefix: String?)
    }

    var name: String
    var method: RPCMethod
    var protobuf: [UInt8]
    var expected: Expected

    init(name: String, method: RPCMethod, protobuf hex: String, expected: Expected) {
        self.name = name
        self.method = method
        self.protobuf = bytes(hex: hex)
        self.expected = expected
    }

    var testDescription: String { name }
}

/// One answer of the core and the bytes Python serializes for the response message.
struct ResponseVector: Sendable, CustomTestStringConvertible {
    var name: String
    var method: RPCMethod
    var location: String?
    var body: [UInt8]
    var protobuf: [UInt8]

    init(name: String, method: RPCMethod, location: String?, body: String, protobuf hex: String) {
        self.name = name
        self.method = method
        self.location = location
        self.body = Array(body.utf8)
        self.protobuf = bytes(hex: hex)
    }

    var testDescription: String { name }
}

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8?
    for c in hex.utf8 {
        let nibble: UInt8 = c <= UInt8(ascii: "9") ? c - UInt8(ascii: "0") : c - UInt8(ascii: "a") + 10
        if let h = high {
            out.append(h << 4 | nibble)
            high = nil
        } else {
            high = nibble
        }
    }
    return out
}

func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

// Builders the generated routes use.

func serviceInclude(
    activeStates: Bool = false, completedStates: Bool = false, activeTasks: Bool = false, completedTasks: Bool = false
) -> ServiceInclude {
    var include = ServiceInclude()
    include.activeStates = activeStates
    include.completedStates = completedStates
    include.activeTasks = activeTasks
    include.completedTasks = completedTasks
    return include
}

func stateInclude(activeTasks: Bool = false, completedTasks: Bool = false) -> StateInclude {
    var include = StateInclude()
    include.activeTasks = activeTasks
    include.completedTasks = completedTasks
    return include
}

func taskFilter(_ status: TaskFilter.Status, types: [String] = [], stateID: Int64? = nil) -> TaskFilter {
    var filter = TaskFilter()
    filter.status = status
    filter.taskTypes = types
    filter.stateID = stateID
    return filter
}

/// `Codec.decodeRequest` on a byte array, as a Result.
func decode(_ method: RPCMethod, _ message: [UInt8]) -> Result<UpstreamCall, GRPCStatus> {
    message.withUnsafeBytes { raw in
        Result { () throws(GRPCStatus) -> UpstreamCall in try Codec.decodeRequest(method, raw) }
    }
}

/// Builds protobuf wire bytes inside out in O(n): each `wrap` puts a tag and a length in
/// front of everything written so far. For nesting too deep to build front to back.
struct InsideOutWire {
    private var reversed: [UInt8] = []

    var bytes: [UInt8] { reversed.reversed() }
    var count: Int { reversed.count }

    /// Puts raw bytes in front.
    mutating func prepend(_ raw: [UInt8]) {
        reversed.append(contentsOf: raw.reversed())
    }

    /// Makes what is written so far the length-delimited field `field`.
    mutating func wrap(_ field: UInt64) {
        prepend(varint(UInt64(reversed.count)))
        prepend(varint(field << 3 | 2))
    }
}

func varint(_ value: UInt64) -> [UInt8] {
    var v = value
    var out: [UInt8] = []
    while v >= 0x80 {
        out.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    out.append(UInt8(v))
    return out
}
