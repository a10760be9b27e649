public import NIOCore

/// A start or end event body (CONTEXT-SERVICES.md §3), validated.
///
/// Standard fields are held as typed values; extensions (every other key) are held as the
/// exact bytes sent, so that `12345678901234567890`, `1.0e+2`, `-0` and escaped strings come
/// back byte for byte.
public struct Event: Sendable, Equatable {
    public var kind: ResourceKind
    public var phase: EventPhase

    // Resource-level fields, start events only (§4: they sit beside the resource's id).
    public var type: BusinessAttribute?
    /// Tasks only: the state the task belongs to.
    public var stateID: Int32?
    public var estDuration: Int32?
    /// Services only.
    public var customerID: String?
    /// Services only; an alternative to `customerID`, never both.
    public var contactKey: String?

    // Event-level fields (§4: they sit inside `started` / `completed`).
    public var timestamp: Timestamp?
    public var sessionID: String?
    public var interactionID: String?
    public var applicationType: BusinessAttribute?
    public var applicationID: Int64?
    public var resourceType: BusinessAttribute?
    public var resourceID: Int64?
    public var mediaType: BusinessAttribute?
    /// End events only.
    public var disposition: BusinessAttribute?
    /// End events only.
    public var dispositionDesc: String?

    /// The extension members exactly as sent: `"key":value` pairs joined by `,`, in the order
    /// received, each key and value byte for byte. Empty when there are none.
    public var extensions: [UInt8]

    public init(kind: ResourceKind, phase: EventPhase) {
        self.kind = kind
        self.phase = phase
        self.extensions = []
    }
}

// MARK: - Field rules

/// Every standard key of §3 with its rule; a key not in this table is an extension.
enum StandardField: String, CaseIterable {
    case stateID = "state_id"
    case taskType = "task_type"
    case stateType = "state_type"
    case serviceType = "service_type"
    case sessionID = "session_id"
    case interactionID = "interaction_id"
    case applicationType = "application_type"
    case applicationID = "application_id"
    case resourceType = "resource_type"
    case resourceID = "resource_id"
    case mediaType = "media_type"
    case estDuration = "est_duration"
    case timestamp = "timestamp"
    case customerID = "customer_id"
    case contactKey = "contact_key"
    case disposition = "disposition"
    case dispositionDesc = "disposition_desc"
}

/// Keys that name the resource itself or a member of its representation (§3, decided:
/// refused with 400, so a representation can never hold two meanings for one key).
let reservedKeys: Set<String> = [
    "service_id", "task_id", "started", "completed",
    "active_states", "completed_states", "active_tasks", "completed_tasks",
]

/// Length limits of §3, in Unicode scalars.
public enum FieldLimits {
    public static let sessionID = 32
    public static let interactionID = 50
    public static let dispositionDesc = 64
}

extension Event {
    /// Parses and validates a body. Throws a 400 (`ValidationException`) for any field of the
    /// wrong type, out of range, too long, refused here or malformed JSON, and a 413 for size.
    public static func parse(
        _ body: [UInt8], kind: ResourceKind, phase: EventPhase, limits: JSONLimits = .defaults
    ) throws(ContextError) -> Event {
        let result = body.withUnsafeBytes { raw in
            Result { () throws(ContextError) -> Event in try parse(raw, kind: kind, phase: phase, limits: limits) }
        }
        return try result.get()
    }

    /// `parse` read in place from the buffer the body arrived in (no copy of the body).
    public static func parse(
        _ body: ByteBuffer, kind: ResourceKind, phase: EventPhase, limits: JSONLimits = .defaults
    ) throws(ContextError) -> Event {
        let result = body.withUnsafeReadableBytes { raw in
            Result { () throws(ContextError) -> Event in try parse(raw, kind: kind, phase: phase, limits: limits) }
        }
        return try result.get()
    }

    public static func parse(
        _ body: UnsafeRawBufferPointer, kind: ResourceKind, phase: EventPhase, limits: JSONLimits = .defaults
    ) throws(ContextError) -> Event {
        let members: [JSONMember]
        do {
            members = try StrictJSON.readObject(body, limits: limits)
        } catch {
            throw ContextError(error)
        }
        return try Event(members: members, body: body, kind: kind, phase: phase)
    }

    /// Builds an event from members of an already validated object. `body` is the byte array
    /// the members' raw ranges point into.
    public init(
        members: [JSONMember], body: [UInt8], kind: ResourceKind, phase: EventPhase
    ) throws(ContextError) {
        let result = body.withUnsafeBytes { raw in
            Result { () throws(ContextError) -> Event in try Event(members: members, body: raw, kind: kind, phase: phase) }
        }
        self = try result.get()
    }

    /// Builds an event from members of an already validated object. `body` holds the bytes
    /// the members' raw ranges point into.
    public init(
        members: [JSONMember], body: UnsafeRawBufferPointer, kind: ResourceKind, phase: EventPhase
    ) throws(ContextError) {
        self.init(kind: kind, phase: phase)
        for member in members {
            if reservedKeys.contains(member.key) {
                if member.key == kind.idKey || member.key == "started" || member.key == "completed" {
                    throw .validation("\(member.key) names the \(kind.name) itself and cannot be sent in its body")
                }
                throw .validation("\(member.key) is a member of representations and cannot be sent in a body")
            }
            guard let field = StandardField(rawValue: member.key) else {
                if !extensions.isEmpty { extensions.append(UInt8(ascii: ",")) }
                extensions.append(contentsOf: body[member.rawKey])
                extensions.append(UInt8(ascii: ":"))
                extensions.append(contentsOf: body[member.rawValue])
                continue
            }
            try apply(field, member.value)
        }
        if customerID != nil && contactKey != nil {
            throw .validation("customer_id and contact_key are alternatives: send one of them")
        }
    }

    private mutating func apply(_ field: StandardField, _ value: JSONScalar) throws(ContextError) {
        let key = field.rawValue
        switch field {
        case .stateID:
            guard kind == .task else {
                if kind == .state {
                    throw .validation("state_id names the state itself and cannot be sent in its body")
                }
                throw .validation("state_id is a field of task events only")
            }
            try requireStart(key)
            stateID = Int32(try integer(key, value, in: ResourceID.childRange, rangeText: "a 32-bit integer from 1 to 2147483647"))
        case .taskType, .stateType, .serviceType:
            guard key == kind.typeKey else {
                throw .validation("\(key) is not a field of a \(kind.name) event; use \(kind.typeKey)")
            }
            try requireStart(key)
            type = try attribute(key, value)
        case .sessionID:
            sessionID = try string(key, value, max: FieldLimits.sessionID)
        case .interactionID:
            interactionID = try string(key, value, max: FieldLimits.interactionID)
        case .applicationType:
            applicationType = try attribute(key, value)
        case .applicationID:
            applicationID = try integer(key, value, in: Int64.min...Int64.max, rangeText: "a 64-bit integer")
        case .resourceType:
            resourceType = try attribute(key, value)
        case .resourceID:
            resourceID = try integer(key, value, in: Int64.min...Int64.max, rangeText: "a 64-bit integer")
        case .mediaType:
            mediaType = try attribute(key, value)
        case .estDuration:
            try requireStart(key)
            estDuration = Int32(try integer(key, value, in: 0...Int64(Int32.max), rangeText: "a 32-bit integer from 0 to 2147483647"))
        case .timestamp:
            guard case .string(let text) = value else {
                throw .validation("timestamp must be a string such as 2017-04-27T10:18:00.000Z, got \(describe(value))")
            }
            do {
                timestamp = try Timestamp(rfc3339: text)
            } catch {
                throw .validation(error.message)
            }
        case .customerID, .contactKey:
            guard kind == .service else {
                throw .validation("\(key) is a field of service events only")
            }
            try requireStart(key)
            let text = try string(key, value, max: nil)
            if field == .customerID { customerID = text } else { contactKey = text }
        case .disposition:
            guard phase == .end else { throw .validation("disposition is a field of end events only") }
            disposition = try attribute(key, value)
        case .dispositionDesc:
            guard phase == .end else { throw .validation("disposition_desc is a field of end events only") }
            dispositionDesc = try string(key, value, max: FieldLimits.dispositionDesc)
        }
    }

    private func requireStart(_ key: String) throws(ContextError) {
        guard phase == .start else {
            throw .validation("\(key) is set when the \(kind.name) starts and cannot be sent when it ends")
        }
    }
}

private func describe(_ value: JSONScalar) -> String {
    switch value {
    case .string: "a string"
    case .integer(let v): "\(v)"
    case .bigInteger: "an integer beyond 64 bits"
    case .number: "a number with a fraction or exponent"
    case .bool(let b): "\(b)"
    case .null: "null"
    case .object: "an object"
    case .array: "an array"
    }
}

private func integer(
    _ key: String, _ value: JSONScalar, in range: ClosedRange<Int64>, rangeText: String
) throws(ContextError) -> Int64 {
    guard case .integer(let v) = value, range.contains(v) else {
        throw .validation("\(key) must be \(rangeText), got \(describe(value))")
    }
    return v
}

private func attribute(_ key: String, _ value: JSONScalar) throws(ContextError) -> BusinessAttribute {
    switch value {
    case .integer(let v): return .id(v)
    case .string(let s): return .name(s)
    default:
        throw .validation("\(key) must be a 64-bit integer or a string, got \(describe(value))")
    }
}

private func string(_ key: String, _ value: JSONScalar, max: Int?) throws(ContextError) -> String {
    guard case .string(let s) = value else {
        throw .validation("\(key) must be a string, got \(describe(value))")
    }
    if let max {
        let count = s.unicodeScalars.count
        if count > max {
            throw .validation("\(key) must be at most \(max) characters, got \(count)")
        }
    }
    return s
}
