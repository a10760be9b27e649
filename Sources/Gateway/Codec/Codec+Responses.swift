import ContextModel

// The core's 2xx answers → response messages. The answer is the core's (or a vendor core's)
// JSON: it is read strictly, and what does not fit the contract is an INTERNAL error, never a
// guess. Representation members (§4) map onto the proto's fields; every other member of a
// resource or event object is an extension and travels as the exact text `{"k":v,...}` built
// from its raw bytes.

extension Codec {
    /// Representations can be big (a service with its tasks) and nest deeper than one body:
    /// the extensions' own 64 levels sit inside service → states → tasks → started. The
    /// transport bounds the answer's size; the reader only needs a depth bound.
    static let answerLimits = JSONLimits(maxBytes: .max, maxDepth: 256)

    /// Start*: `{"<kind>_id":N}` and the `Location` header.
    static func encodeCreated(_ kind: ResourceKind, location: String?, body: [UInt8]) throws(GRPCStatus) -> [UInt8] {
        let id = try withBytes(body) { json throws(GRPCStatus) -> Int64? in
            var id: Int64?
            for member in try readAnswer(json, kind.name + " start") where member.key == kind.idKey {
                id = try AnswerField(member, kind.name + " start").integer(in: kind == .service ? ResourceID.serviceRange : ResourceID.childRange)
            }
            return id
        }
        guard let id else { throw .badUpstreamAnswer("the \(kind.name) start answered without \(kind.idKey)") }
        var writer = ProtobufWriter()
        writer.int(1, id)  // never 0: ids start at 1
        writer.implicitString(2, location ?? "")
        return writer.bytes
    }

    /// Query Service / State / Task: one representation in field 1 of the response.
    static func encodeQuery(_ body: [UInt8], as kind: ResourceKind) throws(GRPCStatus) -> [UInt8] {
        let resource = try withBytes(body) { json throws(GRPCStatus) -> ResourceAnswer in
            try ResourceAnswer(json, kind: kind)
        }
        var writer = ProtobufWriter()
        writer.message(1) { resource.write(to: &$0) }
        return writer.bytes
    }

    /// Query Tasks: a JSON array of Task representations, each one a `tasks` element.
    static func encodeQueryTasks(_ body: [UInt8]) throws(GRPCStatus) -> [UInt8] {
        // StrictJSON reads objects only: validate the array as the value of a wrapper object,
        // then cut it into its elements.
        let wrapped = Array(#"{"tasks":"#.utf8) + body + [UInt8(ascii: "}")]
        let tasks = try withBytes(wrapped) { json throws(GRPCStatus) -> [ResourceAnswer] in
            let members = try readAnswer(json, "Query Tasks")
            guard members.count == 1, members[0].value == .array else {
                throw .badUpstreamAnswer("Query Tasks answered with something other than one JSON array")
            }
            return try ResourceAnswer.list(json, members[0].rawValue, kind: .task, what: "Query Tasks")
        }
        var writer = ProtobufWriter()
        for task in tasks {
            writer.message(1) { task.write(to: &$0) }
        }
        return writer.bytes
    }
}

/// Reads one object of the answer strictly.
func readAnswer(_ json: UnsafeRawBufferPointer, _ what: String) throws(GRPCStatus) -> [JSONMember] {
    do {
        return try StrictJSON.readObject(json, limits: Codec.answerLimits)
    } catch {
        throw .badUpstreamAnswer("\(what): \(error.message)")
    }
}

/// `Array.withUnsafeBytes` rethrows untyped errors: carry the typed one through a Result.
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(GRPCStatus) -> R) throws(GRPCStatus) -> R {
    let result = bytes.withUnsafeBytes { raw in
        Result { () throws(GRPCStatus) -> R in try body(raw) }
    }
    return try result.get()
}

/// One member of an answer object, read as the type its standard field has. `null` reads as
/// absent (a core may spell "not set" that way); any other mismatch is an INTERNAL error.
struct AnswerField {
    let member: JSONMember
    let what: String

    init(_ member: JSONMember, _ what: String) {
        self.member = member
        self.what = what
    }

    private func mismatch(_ expected: String) -> GRPCStatus {
        .badUpstreamAnswer("\(what): \(member.key) must be \(expected)")
    }

    func integer(in range: ClosedRange<Int64>) throws(GRPCStatus) -> Int64? {
        switch member.value {
        case .null: return nil
        case .integer(let v) where range.contains(v): return v
        default: throw mismatch("an integer from \(range.lowerBound) to \(range.upperBound)")
        }
    }

    func string() throws(GRPCStatus) -> String? {
        switch member.value {
        case .null: return nil
        case .string(let s): return s
        default: throw mismatch("a string")
        }
    }

    func attribute() throws(GRPCStatus) -> BusinessAttribute? {
        switch member.value {
        case .null: return nil
        case .integer(let v): return .id(v)
        case .string(let s): return .name(s)
        default: throw mismatch("an integer or a string")
        }
    }

    /// The raw range of an object value (nil for null).
    func object() throws(GRPCStatus) -> Range<Int>? {
        switch member.value {
        case .null: return nil
        case .object: return member.rawValue
        default: throw mismatch("an object")
        }
    }

    /// The raw range of an array value (nil for null).
    func array() throws(GRPCStatus) -> Range<Int>? {
        switch member.value {
        case .null: return nil
        case .array: return member.rawValue
        default: throw mismatch("an array")
        }
    }
}

/// Members that are not fields of the proto: `{"k":v,...}` from their raw bytes, in order.
struct ExtensionText {
    private(set) var bytes: [UInt8] = []

    mutating func add(_ member: JSONMember, from json: UnsafeRawBufferPointer) {
        bytes.append(bytes.isEmpty ? UInt8(ascii: "{") : UInt8(ascii: ","))
        bytes.append(contentsOf: json[member.rawKey])
        bytes.append(UInt8(ascii: ":"))
        bytes.append(contentsOf: json[member.rawValue])
    }

    /// The text of the object, or empty when there were no members (the proto's "none").
    var text: [UInt8] {
        bytes.isEmpty ? [] : bytes + [UInt8(ascii: "}")]
    }
}

/// `started` / `completed`: the proto's `Event`.
struct EventAnswer {
    var timestamp: String?
    var sessionID: String?
    var interactionID: String?
    var applicationType: BusinessAttribute?
    var applicationID: Int64?
    var resourceType: BusinessAttribute?
    var resourceID: Int64?
    var mediaType: BusinessAttribute?
    var disposition: BusinessAttribute?
    var dispositionDesc: String?
    var extensions = ExtensionText()

    init(_ json: UnsafeRawBufferPointer, what: String) throws(GRPCStatus) {
        for member in try readAnswer(json, what) {
            let field = AnswerField(member, what)
            switch member.key {
            case "timestamp": timestamp = try field.string()
            case "session_id": sessionID = try field.string()
            case "interaction_id": interactionID = try field.string()
            case "application_type": applicationType = try field.attribute()
            case "application_id": applicationID = try field.integer(in: .min ... .max)
            case "resource_type": resourceType = try field.attribute()
            case "resource_id": resourceID = try field.integer(in: .min ... .max)
            case "media_type": mediaType = try field.attribute()
            case "disposition": disposition = try field.attribute()
            case "disposition_desc": dispositionDesc = try field.string()
            default: extensions.add(member, from: json)
            }
        }
    }

    /// genesys.cs.v1.Event: fields = 1, disposition = 2, disposition_desc = 3, extensions_json = 4.
    func write(to w: inout ProtobufWriter) {
        // `fields` is always present: an event always has its timestamp (§3).
        w.message(1) { f in
            if let timestamp { f.string(1, timestamp) }
            if let sessionID { f.string(2, sessionID) }
            if let interactionID { f.string(3, interactionID) }
            if let applicationType { f.message(4) { applicationType.write(to: &$0) } }
            if let applicationID { f.int(5, applicationID) }
            if let resourceType { f.message(6) { resourceType.write(to: &$0) } }
            if let resourceID { f.int(7, resourceID) }
            if let mediaType { f.message(8) { mediaType.write(to: &$0) } }
        }
        if let disposition { w.message(2) { disposition.write(to: &$0) } }
        if let dispositionDesc { w.string(3, dispositionDesc) }
        let text = extensions.text
        if !text.isEmpty { w.lengthDelimited(4, text) }
    }
}

/// A Service, State or Task representation (§4).
struct ResourceAnswer {
    let kind: ResourceKind
    var serviceID: Int64 = 0
    /// The state or task id (a service's id is `serviceID`).
    var id: Int64 = 0
    var type: BusinessAttribute?
    /// Tasks: the state the task belongs to; 0 for none.
    var stateID: Int64 = 0
    var estDuration: Int64?
    var customerID: String?
    var contactKey: String?
    var started: EventAnswer?
    var completed: EventAnswer?
    var extensions = ExtensionText()
    var activeStates: [ResourceAnswer] = []
    var completedStates: [ResourceAnswer] = []
    var activeTasks: [ResourceAnswer] = []
    var completedTasks: [ResourceAnswer] = []

    init(_ json: UnsafeRawBufferPointer, kind: ResourceKind) throws(GRPCStatus) {
        self.kind = kind
        let what = kind.name + " representation"
        for member in try readAnswer(json, what) {
            let field = AnswerField(member, what)
            switch member.key {
            case "service_id":
                serviceID = try field.integer(in: ResourceID.serviceRange) ?? 0
            case kind.idKey where kind != .service:
                id = try field.integer(in: ResourceID.childRange) ?? 0
            case "state_id" where kind == .task:
                stateID = try field.integer(in: ResourceID.childRange) ?? 0
            case kind.typeKey:
                type = try field.attribute()
            case "est_duration":
                estDuration = try field.integer(in: 0...Int64(Int32.max))
            case "customer_id" where kind == .service:
                customerID = try field.string()
            case "contact_key" where kind == .service:
                contactKey = try field.string()
            case "started":
                if let range = try field.object() {
                    started = try EventAnswer(UnsafeRawBufferPointer(rebasing: json[range]), what: what + " started")
                }
            case "completed":
                if let range = try field.object() {
                    completed = try EventAnswer(UnsafeRawBufferPointer(rebasing: json[range]), what: what + " completed")
                }
            case "active_states" where kind == .service:
                if let range = try field.array() { activeStates = try Self.list(json, range, kind: .state, what: what) }
            case "completed_states" where kind == .service:
                if let range = try field.array() { completedStates = try Self.list(json, range, kind: .state, what: what) }
            case "active_tasks" where kind != .task:
                if let range = try field.array() { activeTasks = try Self.list(json, range, kind: .task, what: what) }
            case "completed_tasks" where kind != .task:
                if let range = try field.array() { completedTasks = try Self.list(json, range, kind: .task, what: what) }
            default:
                extensions.add(member, from: json)
            }
        }
    }

    /// The elements of the (already validated) array at `range`, each a representation.
    static func list(_ json: UnsafeRawBufferPointer, _ range: Range<Int>, kind: ResourceKind, what: String) throws(GRPCStatus) -> [ResourceAnswer] {
        var resources: [ResourceAnswer] = []
        for element in JSONArraySlicer.elements(of: json, range) {
            guard json[element.lowerBound] == UInt8(ascii: "{") else {
                throw .badUpstreamAnswer("\(what): an array of \(kind.name)s holds something other than objects")
            }
            resources.append(try ResourceAnswer(UnsafeRawBufferPointer(rebasing: json[element]), kind: kind))
        }
        return resources
    }

    /// genesys.cs.v1.Task, State or Service, by `kind`.
    func write(to w: inout ProtobufWriter) {
        switch kind {
        case .task:
            w.implicitInt(1, serviceID)
            w.implicitInt(2, id)
            if let type { w.message(3) { type.write(to: &$0) } }
            w.implicitInt(4, stateID)
            if let estDuration { w.int(5, estDuration) }
            if let started { w.message(6) { started.write(to: &$0) } }
            if let completed { w.message(7) { completed.write(to: &$0) } }
            writeExtensions(8, to: &w)
        case .state:
            w.implicitInt(1, serviceID)
            w.implicitInt(2, id)
            if let type { w.message(3) { type.write(to: &$0) } }
            if let estDuration { w.int(4, estDuration) }
            if let started { w.message(5) { started.write(to: &$0) } }
            if let completed { w.message(6) { completed.write(to: &$0) } }
            writeExtensions(7, to: &w)
            for task in activeTasks { w.message(8) { task.write(to: &$0) } }
            for task in completedTasks { w.message(9) { task.write(to: &$0) } }
        case .service:
            w.implicitInt(1, serviceID)
            if let type { w.message(2) { type.write(to: &$0) } }
            if let customerID { w.string(3, customerID) }
            if let contactKey { w.string(4, contactKey) }
            if let estDuration { w.int(5, estDuration) }
            if let started { w.message(6) { started.write(to: &$0) } }
            if let completed { w.message(7) { completed.write(to: &$0) } }
            writeExtensions(8, to: &w)
            for state in activeStates { w.message(9) { state.write(to: &$0) } }
            for state in completedStates { w.message(10) { state.write(to: &$0) } }
            for task in activeTasks { w.message(11) { task.write(to: &$0) } }
            for task in completedTasks { w.message(12) { task.write(to: &$0) } }
        }
    }

    private func writeExtensions(_ field: Int, to w: inout ProtobufWriter) {
        let text = extensions.text
        if !text.isEmpty { w.lengthDelimited(field, text) }
    }
}

extension BusinessAttribute {
    /// genesys.cs.v1.BusinessAttribute: the oneof, id = 1 or name = 2 (written even at 0 / "").
    func write(to w: inout ProtobufWriter) {
        switch self {
        case .id(let v): w.int(1, v)
        case .name(let s): w.string(2, s)
        }
    }
}

/// Cuts a JSON array that StrictJSON has already validated into its elements' byte ranges.
/// Trusting the validation, it only tracks strings (for brackets and commas inside them) and
/// nesting.
enum JSONArraySlicer {
    static func elements(of json: UnsafeRawBufferPointer, _ array: Range<Int>) -> [Range<Int>] {
        var elements: [Range<Int>] = []
        var depth = 0
        var inString = false
        var start: Int?
        var end = 0
        var i = array.lowerBound + 1  // after '['
        while i < array.upperBound {
            let b = json[i]
            if inString {
                if b == UInt8(ascii: "\\") {
                    i += 1
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                    end = i + 1
                }
                i += 1
                continue
            }
            switch b {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                break
            case UInt8(ascii: ",") where depth == 0, UInt8(ascii: "]") where depth == 0:
                if let s = start { elements.append(s..<end) }
                start = nil
            default:
                if start == nil { start = i }
                switch b {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
                end = i + 1
            }
            i += 1
        }
        return elements
    }
}
