import ContextModel
import NIOCore

// The core's 2xx answers → response messages. The answer is the core's (or a vendor core's)
// JSON: it is read strictly, and what does not fit the contract is an INTERNAL error, never a
// guess. Representation members (§4) map onto the proto's fields; every other member of a
// resource or event object is an extension and travels as the exact text `{"k":v,...}` built
// from its raw bytes. Field numbers are the generated table's (`ResponseFields`), looked up by
// the field's name once.

/// The field numbers the response writer needs, from the generated field maps: each
/// representation message's by field name (0: the message has no such field), found through
/// the RPC table (the Query RPC of each kind answers its representation).
struct ResponseFields: Sendable {
    var serviceID = 0, id = 0, type = 0, stateID = 0, customerID = 0, contactKey = 0, estDuration = 0
    var started = 0, completed = 0, extensions = 0
    var activeStates = 0, completedStates = 0, activeTasks = 0, completedTasks = 0

    init(_ kind: ResourceKind) {
        guard let query = RPCMethod.allCases.first(where: { RPCContract.of($0) == .query(kind) }),
              let typeName = query.descriptor.responseFields.first(where: { $0.type == .message })?.typeName
        else { preconditionFailure("no Query RPC answers a \(kind.name) representation") }
        for field in ProtoSchema.fields(of: typeName) {
            switch field.name {
            case "service_id": serviceID = field.number
            case kind.idKey where kind != .service: id = field.number
            case kind.typeKey: type = field.number
            case "state_id": stateID = field.number
            case "customer_id": customerID = field.number
            case "contact_key": contactKey = field.number
            case "est_duration": estDuration = field.number
            case "started": started = field.number
            case "completed": completed = field.number
            case "extensions_json": extensions = field.number
            case "active_states": activeStates = field.number
            case "completed_states": completedStates = field.number
            case "active_tasks": activeTasks = field.number
            case "completed_tasks": completedTasks = field.number
            default: preconditionFailure("\(typeName).\(field.name): the response writer has no member for it")
            }
        }
    }

    static let task = ResponseFields(.task)
    static let state = ResponseFields(.state)
    static let service = ResponseFields(.service)

    static func of(_ kind: ResourceKind) -> ResponseFields {
        switch kind {
        case .task: task
        case .state: state
        case .service: service
        }
    }

    /// Start*: the new id's field and `location`.
    static func created(_ method: RPCMethod) -> (id: Int, location: Int) {
        createdByMethod[method.rawValue]
    }

    private static let createdByMethod: [(id: Int, location: Int)] = RPCMethod.allCases.map { method in
        guard case .start(let kind) = RPCContract.of(method) else { return (0, 0) }
        let fields = method.descriptor.responseFields
        guard let id = fields.named(kind.idKey), let location = fields.named("location") else {
            preconditionFailure("\(method.path): the response has no \(kind.idKey) or location")
        }
        return (id.number, location.number)
    }

    /// Queries: the field of the representation (or of each, Query Tasks).
    static func resource(_ method: RPCMethod) -> Int {
        resourceByMethod[method.rawValue]
    }

    private static let resourceByMethod: [Int] = RPCMethod.allCases.map { method in
        method.descriptor.responseFields.first { $0.type == .message }?.number ?? 0
    }
}

/// `Event` and `EventFields` (the `started` / `completed` of a representation) and
/// `BusinessAttribute`, by field name.
struct EventFieldNumbers: Sendable {
    let fields: Int, disposition: Int, dispositionDesc: Int, extensions: Int
    let timestamp: Int, sessionID: Int, interactionID: Int, applicationType: Int, applicationID: Int
    let resourceType: Int, resourceID: Int, mediaType: Int
    let attributeID: Int, attributeName: Int

    static let shared = EventFieldNumbers()

    private init() {
        let task = ProtoSchema.fields(of: RPCMethod.queryTask.descriptor.responseFields[0].typeName ?? "")
        let eventType = task.named("started")?.typeName ?? ""
        let event = ProtoSchema.fields(of: eventType)
        let eventFieldsType = event.named("fields")?.typeName ?? ""
        let attributeType = event.named("disposition")?.typeName ?? ""
        func n(_ type: String, _ name: String) -> Int { ProtoSchema.field(type, name).number }
        fields = n(eventType, "fields")
        disposition = n(eventType, "disposition")
        dispositionDesc = n(eventType, "disposition_desc")
        extensions = n(eventType, "extensions_json")
        timestamp = n(eventFieldsType, "timestamp")
        sessionID = n(eventFieldsType, "session_id")
        interactionID = n(eventFieldsType, "interaction_id")
        applicationType = n(eventFieldsType, "application_type")
        applicationID = n(eventFieldsType, "application_id")
        resourceType = n(eventFieldsType, "resource_type")
        resourceID = n(eventFieldsType, "resource_id")
        mediaType = n(eventFieldsType, "media_type")
        attributeID = n(attributeType, "id")
        attributeName = n(attributeType, "name")
    }
}

extension Codec {
    /// Representations can be big (a service with its tasks) and nest deeper than one body:
    /// the extensions' own 64 levels sit inside service → states → tasks → started. The
    /// transport bounds the answer's size; the reader only needs a depth bound.
    static let answerLimits = JSONLimits(maxBytes: .max, maxDepth: 256)

    /// Start*: `{"<kind>_id":N}` and the `Location` header.
    static func encodeCreated(
        _ kind: ResourceKind, _ fields: (id: Int, location: Int), location: String?, body: ByteBuffer
    ) throws(GRPCStatus) -> ByteBuffer {
        let id = try withBytes(body) { json throws(GRPCStatus) -> Int64? in
            var id: Int64?
            for member in try readAnswer(json, kind.name + " start") where member.key == kind.idKey {
                id = try AnswerField(member, kind.name + " start").integer(in: kind == .service ? ResourceID.serviceRange : ResourceID.childRange)
            }
            return id
        }
        guard let id else { throw .badUpstreamAnswer("the \(kind.name) start answered without \(kind.idKey)") }
        var writer = ProtobufWriter(capacity: 16 + (location?.utf8.count ?? 0))
        writer.int(fields.id, id)  // never 0: ids start at 1
        writer.implicitString(fields.location, location ?? "")
        return writer.framed()
    }

    /// Query Service / State / Task: one representation in field 1 of the response.
    static func encodeQuery(_ body: ByteBuffer, as kind: ResourceKind, field: Int) throws(GRPCStatus) -> ByteBuffer {
        let resource = try withBytes(body) { json throws(GRPCStatus) -> ResourceAnswer in
            try ResourceAnswer(json, kind: kind)
        }
        var writer = ProtobufWriter(capacity: body.readableBytes)  // the message is no larger than its JSON, as a rule
        writer.message(field) { resource.write(to: &$0) }
        return writer.framed()
    }

    /// Query Tasks: a JSON array of Task representations, each one a `tasks` element.
    static func encodeQueryTasks(_ body: ByteBuffer, field: Int) throws(GRPCStatus) -> ByteBuffer {
        // StrictJSON reads objects only: validate the array as the value of a wrapper object,
        // then cut it into its elements.
        let wrapped = Array(#"{"tasks":"#.utf8) + body.readableBytesView + [UInt8(ascii: "}")]
        let tasks = try withBytes(wrapped) { json throws(GRPCStatus) -> [ResourceAnswer] in
            let members = try readAnswer(json, "Query Tasks")
            guard members.count == 1, members[0].value == .array else {
                throw .badUpstreamAnswer("Query Tasks answered with something other than one JSON array")
            }
            return try ResourceAnswer.list(json, members[0].rawValue, kind: .task, what: "Query Tasks")
        }
        var writer = ProtobufWriter(capacity: body.readableBytes)
        for task in tasks {
            writer.message(field) { task.write(to: &$0) }
        }
        return writer.framed()
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

/// The answer's bytes in place.
func withBytes<R>(_ bytes: ByteBuffer, _ body: (UnsafeRawBufferPointer) throws(GRPCStatus) -> R) throws(GRPCStatus) -> R {
    let result = bytes.withUnsafeReadableBytes { raw in
        Result { () throws(GRPCStatus) -> R in try body(raw) }
    }
    return try result.get()
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

    /// genesys.cs.v1.Event, numbered by `EventFieldNumbers`.
    func write(to w: inout ProtobufWriter) {
        let n = EventFieldNumbers.shared
        // `fields` is always present: an event always has its timestamp (§3).
        w.message(n.fields) { f in
            if let timestamp { f.string(n.timestamp, timestamp) }
            if let sessionID { f.string(n.sessionID, sessionID) }
            if let interactionID { f.string(n.interactionID, interactionID) }
            if let applicationType { f.message(n.applicationType) { applicationType.write(to: &$0) } }
            if let applicationID { f.int(n.applicationID, applicationID) }
            if let resourceType { f.message(n.resourceType) { resourceType.write(to: &$0) } }
            if let resourceID { f.int(n.resourceID, resourceID) }
            if let mediaType { f.message(n.mediaType) { mediaType.write(to: &$0) } }
        }
        if let disposition { w.message(n.disposition) { disposition.write(to: &$0) } }
        if let dispositionDesc { w.string(n.dispositionDesc, dispositionDesc) }
        let text = extensions.text
        if !text.isEmpty { w.lengthDelimited(n.extensions, text) }
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

    /// genesys.cs.v1.Task, State or Service, by `kind`, numbered by `ResponseFields`. The
    /// members are written in the one order their numbers ascend in for every kind; a member
    /// the kind's message lacks (number 0) is skipped, and the kind never sets one.
    func write(to w: inout ProtobufWriter) {
        let n = ResponseFields.of(kind)
        if n.serviceID != 0 { w.implicitInt(n.serviceID, serviceID) }
        if n.id != 0 { w.implicitInt(n.id, id) }
        if n.type != 0, let type { w.message(n.type) { type.write(to: &$0) } }
        if n.stateID != 0 { w.implicitInt(n.stateID, stateID) }
        if n.customerID != 0, let customerID { w.string(n.customerID, customerID) }
        if n.contactKey != 0, let contactKey { w.string(n.contactKey, contactKey) }
        if n.estDuration != 0, let estDuration { w.int(n.estDuration, estDuration) }
        if n.started != 0, let started { w.message(n.started) { started.write(to: &$0) } }
        if n.completed != 0, let completed { w.message(n.completed) { completed.write(to: &$0) } }
        if n.extensions != 0 { writeExtensions(n.extensions, to: &w) }
        for state in activeStates { w.message(n.activeStates) { state.write(to: &$0) } }
        for state in completedStates { w.message(n.completedStates) { state.write(to: &$0) } }
        for task in activeTasks { w.message(n.activeTasks) { task.write(to: &$0) } }
        for task in completedTasks { w.message(n.completedTasks) { task.write(to: &$0) } }
    }

    private func writeExtensions(_ field: Int, to w: inout ProtobufWriter) {
        let text = extensions.text
        if !text.isEmpty { w.lengthDelimited(field, text) }
    }
}

extension BusinessAttribute {
    /// genesys.cs.v1.BusinessAttribute: the oneof, id or name (written even at 0 / "").
    func write(to w: inout ProtobufWriter) {
        switch self {
        case .id(let v): w.int(EventFieldNumbers.shared.attributeID, v)
        case .name(let s): w.string(EventFieldNumbers.shared.attributeName, s)
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
