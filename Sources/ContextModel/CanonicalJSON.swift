/// Writes the members of one JSON object with no whitespace, tracking the commas.
struct ObjectWriter {
    var out: [UInt8]
    private var empty = true

    init(into out: [UInt8] = []) {
        self.out = out
    }

    mutating func key(_ key: String) {
        if !empty { out.append(UInt8(ascii: ",")) }
        empty = false
        JSONWriter.appendKey(key, to: &out)
    }

    mutating func int(_ key: String, _ value: Int64?) {
        guard let value else { return }
        self.key(key)
        JSONWriter.appendInt(value, to: &out)
    }

    mutating func string(_ key: String, _ value: String?) {
        guard let value else { return }
        self.key(key)
        JSONWriter.appendString(value, to: &out)
    }

    mutating func attribute(_ key: String, _ value: BusinessAttribute?) {
        guard let value else { return }
        self.key(key)
        value.append(to: &out)
    }

    mutating func timestamp(_ key: String, _ value: Timestamp?) {
        guard let value else { return }
        self.key(key)
        out.append(UInt8(ascii: "\""))
        value.append(to: &out)
        out.append(UInt8(ascii: "\""))
    }

    /// Members already rendered as `"k":v,...` (possibly empty).
    mutating func raw(_ members: [UInt8]) {
        guard !members.isEmpty else { return }
        if !empty { out.append(UInt8(ascii: ",")) }
        empty = false
        out.append(contentsOf: members)
    }

    /// `"key":{members}`.
    mutating func object(_ key: String, members: [UInt8]) {
        self.key(key)
        out.append(UInt8(ascii: "{"))
        out.append(contentsOf: members)
        out.append(UInt8(ascii: "}"))
    }
}

extension Event {
    /// The canonical JSON body of the REST call (DESIGN.md §4): one object, no whitespace,
    /// standard fields in the contract's table order (§3), then the extensions in the order
    /// received, byte for byte. This is what the gateway sends for a binary request.
    public var canonicalJSON: [UInt8] {
        // One allocation for a typical body: the standard fields of a start event fit in a
        // few hundred bytes, the extensions are copied as they are. Growing from empty cost
        // 5 reallocations for a typical StartTask (micro-benchmark `Canonical JSON`).
        var start: [UInt8] = []
        start.reserveCapacity(256 + extensions.count)
        start.append(UInt8(ascii: "{"))
        var w = ObjectWriter(into: start)
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
        w.out.append(UInt8(ascii: "}"))
        return w.out
    }

    /// The resource-level members of a start event as stored (§4): the type, `state_id`,
    /// `est_duration`, `customer_id` / `contact_key`, without braces. Empty for end events.
    public var resourceMembers: [UInt8] {
        guard phase == .start else { return [] }
        var w = ObjectWriter()
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
        var w = ObjectWriter()
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
