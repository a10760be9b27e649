internal import CProtobufC
import ContextModel
internal import ContextProto

/// Gathers the fields of one start or end request as the members a REST body would have, and
/// lets the model judge them: `Event(members:body:kind:phase:)` applies the contract's rules
/// (types, ranges, lengths, which fields belong to which resource and phase) with the same
/// messages a REST client gets. Standard members carry their decoded value and no raw bytes;
/// the model reads raw bytes only for extensions.
struct EventBuilder {
    let kind: ResourceKind
    let phase: EventPhase
    let method: RPCMethod
    let limits: JSONLimits
    private var members: [JSONMember] = []

    init(_ kind: ResourceKind, _ phase: EventPhase, _ method: RPCMethod, limits: JSONLimits = .defaults) {
        self.kind = kind
        self.phase = phase
        self.method = method
        self.limits = limits
        members.reserveCapacity(12)
    }

    mutating func string(_ key: String, _ pointer: UnsafePointer<CChar>?) throws(GRPCStatus) {
        add(key, .string(try protoString(pointer, key, method)))
    }

    mutating func integer(_ key: String, _ value: Int64) {
        add(key, .integer(value))
    }

    /// One field of the request as the member of the same name, when it is set: an
    /// `EventFields` contributes its own fields, a `BusinessAttribute` its id or name, a
    /// string or an integer itself. `plan` has the layouts of the sub-messages.
    mutating func member(_ member: EventMember, of m: ProtoMessageRef, _ plan: RequestPlan) throws(GRPCStatus) {
        switch member.role {
        case .eventFields:
            guard let sub = m.message(member.slot) else { return }
            for inner in plan.eventMembers {
                try self.member(inner, of: sub, plan)
            }
        case .attribute:
            guard let sub = m.message(member.slot) else { return }
            try attribute(member.key, sub, plan.attributeSlots)
        case .string:
            if m.isSet(member.slot) { try string(member.key, m.cString(member.slot)) }
        case .integer:
            if m.isSet(member.slot) { integer(member.key, m.int64(member.slot)) }
        }
    }

    /// "long or string" (§3, §7): the `oneof` of an int64 id and a string name.
    private mutating func attribute(_ key: String, _ attribute: ProtoMessageRef, _ slots: [FieldSlot]) throws(GRPCStatus) {
        for slot in slots where attribute.isSet(slot) {
            if slot.storage == .string {
                add(key, .string(try protoString(attribute.cString(slot), key, method)))
            } else {
                add(key, .integer(attribute.int64(slot)))
            }
            return
        }
        throw .invalid("\(key) is set but holds neither an id nor a name")
    }

    private mutating func add(_ key: String, _ value: JSONScalar) {
        members.append(JSONMember(key: key, rawKey: 0..<0, rawValue: 0..<0, value: value))
    }

    /// The validated event, with the extensions of whichever form the request used (§7: one
    /// of them at most).
    func build(extensions: ProtoMessageRef?, extensionsJSON: UnsafeMutablePointer<CChar>?) throws(GRPCStatus) -> Event {
        if extensions != nil && extensionsJSON != nil {
            throw .invalid("extensions and extensions_json are alternatives: send one of them")
        }
        var event: Event
        do {
            event = try Event(members: members, body: [], kind: kind, phase: phase)
        } catch {
            throw GRPCStatus(error)
        }
        if let extensions {
            var rendered = StructJSON(method: method, maxDepth: limits.maxDepth)
            try rendered.render(extensions.pointer(as: Google__Protobuf__Struct.self))
            event.extensions = try validatedExtensions(rendered.members, rendered.bytes, field: "extensions")
        } else if let extensionsJSON {
            var length = 0
            while extensionsJSON[length] != 0 { length += 1 }
            let text = [UInt8](UnsafeRawBufferPointer(start: extensionsJSON, count: length))
            let members: [JSONMember]
            do {
                members = try StrictJSON.readObject(text, limits: limits)
            } catch {
                // Byte offsets in the message count from the start of extensions_json.
                throw GRPCStatus(prefixed(ContextError(error), "extensions_json"))
            }
            // Each member's key and value, byte for byte as sent (the model copies them).
            event.extensions = try validatedExtensions(members, text, field: "extensions_json")
        }
        return event
    }

    /// The extension members as the model keeps them (`"k":v,...`), after the model's checks:
    /// keys that name the resource or a member of its representation are refused, and so is a
    /// key that is a standard field, which belongs in its own field of the request.
    private func validatedExtensions(_ members: [JSONMember], _ body: [UInt8], field: String) throws(GRPCStatus) -> [UInt8] {
        guard !members.isEmpty else { return [] }
        let extensions: Event
        do {
            extensions = try Event(members: members, body: body, kind: kind, phase: phase)
        } catch {
            throw GRPCStatus(prefixed(error, field))
        }
        var standard = extensions
        standard.extensions = []
        if standard != Event(kind: kind, phase: phase) {
            // Rare: find which member the model took as a standard field, for the message.
            let key = members.first { member in
                (try? Event(members: [member], body: body, kind: kind, phase: phase))?.extensions.isEmpty ?? false
            }?.key ?? ""
            var quoted: [UInt8] = []
            JSONWriter.appendString(key, to: &quoted)
            throw .invalid("\(field): \(String(decoding: quoted, as: UTF8.self)) is a field of the request: set it there, not among the extensions")
        }
        return extensions.extensions
    }

    private func prefixed(_ error: ContextError, _ field: String) -> ContextError {
        var error = error
        error.message = field + ": " + error.message
        return error
    }
}
