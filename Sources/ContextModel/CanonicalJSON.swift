public import NIOCore

/// Writes the members of one JSON object with no whitespace, tracking the commas.
struct ObjectWriter<Out: JSONOutput> {
    var out: Out
    private var empty = true

    init(into out: Out) {
        self.out = out
    }

    mutating func key(_ key: String) {
        if !empty { out.appendByte(UInt8(ascii: ",")) }
        empty = false
        JSONWriter.key(key, to: &out)
    }

    mutating func int(_ key: String, _ value: Int64?) {
        guard let value else { return }
        self.key(key)
        JSONWriter.int(value, to: &out)
    }

    mutating func string(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        JSONWriter.string(value, to: &out)
    }

    mutating func attribute(_ key: String, _ value: BusinessAttribute?) {
        guard let value else { return }
        self.key(key)
        value.append(to: &out)
    }

    mutating func timestamp(_ key: String, _ value: Timestamp?) {
        guard let value else { return }
        self.key(key)
        out.appendByte(UInt8(ascii: "\""))
        value.append(to: &out)
        out.appendByte(UInt8(ascii: "\""))
    }

    /// Members already rendered as `"k":v,...` (possibly empty).
    mutating func raw(_ members: [UInt8]) {
        guard !members.isEmpty else { return }
        if !empty { out.appendByte(UInt8(ascii: ",")) }
        empty = false
        members.withUnsafeBytes { out.appendBytes($0) }
    }

    /// `"key":{members}`.
    mutating func object(_ key: String, members: [UInt8]) {
        self.key(key)
        out.appendByte(UInt8(ascii: "{"))
        members.withUnsafeBytes { out.appendBytes($0) }
        out.appendByte(UInt8(ascii: "}"))
    }
}

extension Event {
    /// The canonical JSON body of the REST call (DESIGN.md §4): one object, no whitespace,
    /// standard fields in the contract's table order (§3), then the extensions in the order
    /// received, byte for byte. This is what the gateway sends for a binary request, written
    /// straight into the buffer that carries it (no array in between).
    public var canonicalJSON: ByteBuffer {
        // Sized once: the standard fields of a start event fit in a few hundred bytes, the
        // extensions are copied as they are. Growing from empty cost 5 reallocations for a
        // typical StartTask (micro-benchmark `Canonical JSON`), and `ByteBuffer()` then
        // `reserveCapacity` one more. A ByteBuffer is two allocations (its storage object and
        // its bytes), an array one: that one is paid back on the way out, where each answer is
        // a slice of the batch answer instead of an array.
        let out = ByteBufferAllocator().buffer(capacity: 256 + extensions.count)
        return writeCanonicalJSON(into: out)
    }

    /// `canonicalJSON` as a byte array.
    public var canonicalJSONBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + extensions.count)
        return writeCanonicalJSON(into: out)
    }

    /// `out` is moved into the writer and back (`consume`): never shared, so never copied on write.
    private func writeCanonicalJSON<Out: JSONOutput>(into out: consuming Out) -> Out {
        out.appendByte(UInt8(ascii: "{"))
        var w = ObjectWriter(into: consume out)
        w.int("state_id", stateID.map(Int64.init))
        w.attribute(kind.typeKey, type)
        w.string("session_id", sessionID)
        w.string("interaction_id", interactionID)
        w.attribute("application_type", applicationType)
        w.attribute("resource_type", resourceType)
        w.attribute("media_type", mediaType)
        w.int("application_id", applicationID)
        w.int("resource_id", resourceID)
        w.int("est_duration", estDuration.map(Int64.init))
        w.timestamp("timestamp", timestamp)
        w.string("customer_id", customerID)
        w.string("contact_key", contactKey)
        w.attribute("disposition", disposition)
        w.string("disposition_desc", dispositionDesc)
        w.raw(extensions)
        w.out.appendByte(UInt8(ascii: "}"))
        return w.out
    }

    /// The resource-level members of a start event as stored (§4): the type, `state_id`,
    /// `est_duration`, `customer_id` / `contact_key`, without braces. Empty for end events.
    public var resourceMembers: [UInt8] {
        guard phase == .start else { return [] }
        var w = ObjectWriter(into: [UInt8]())
        w.attribute(kind.typeKey, type)
        w.int("state_id", stateID.map(Int64.init))
        w.int("est_duration", estDuration.map(Int64.init))
        w.string("customer_id", customerID)
        w.string("contact_key", contactKey)
        return w.out
    }

    /// The members of the `started` / `completed` object as stored, without braces. The
    /// timestamp is always present: `processedAt` stands in when the body had none (§3).
    /// End-event extensions live here (decided): the resource level holds the start's.
    public func eventMembers(processedAt: Timestamp) -> [UInt8] {
        var w = ObjectWriter(into: [UInt8]())
        w.timestamp("timestamp", timestamp ?? processedAt)
        w.string("session_id", sessionID)
        w.string("interaction_id", interactionID)
        w.attribute("application_type", applicationType)
        w.attribute("resource_type", resourceType)
        w.attribute("media_type", mediaType)
        w.int("application_id", applicationID)
        w.int("resource_id", resourceID)
        w.attribute("disposition", disposition)
        w.string("disposition_desc", dispositionDesc)
        if phase == .end { w.raw(extensions) }
        return w.out
    }

    /// The extensions kept at the resource level: those of the start event.
    public var resourceExtensions: [UInt8] {
        phase == .start ? extensions : []
    }
}
