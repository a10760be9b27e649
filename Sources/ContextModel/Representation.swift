public import NIOCore

/// One stored resource, as pre-rendered fragments: the storage keeps exactly these bytes, so
/// a query answers without re-parsing anything and extensions survive byte for byte.
public struct ResourceRecord: Sendable, Equatable {
    public var kind: ResourceKind
    public var serviceID: Int64
    /// The state or task id; for a service, its service id.
    public var id: Int64
    /// Resource-level members (`Event.resourceMembers`), without braces.
    public var head: [UInt8]
    /// Members of `started` (`Event.eventMembers`), without braces.
    public var started: [UInt8]
    /// Members of `completed`, or nil while the resource is active.
    public var completed: [UInt8]?
    /// The start event's extension members (`Event.resourceExtensions`).
    public var extensions: [UInt8]

    public init(
        kind: ResourceKind, serviceID: Int64, id: Int64, head: [UInt8], started: [UInt8],
        completed: [UInt8]?, extensions: [UInt8]
    ) {
        self.kind = kind
        self.serviceID = serviceID
        self.id = id
        self.head = head
        self.started = started
        self.completed = completed
        self.extensions = extensions
    }

    public var isActive: Bool { completed == nil }
}

/// A resource with the child arrays a query asked for (§4: `active_states`, `completed_tasks`, …).
public struct ResourceView: Sendable, Equatable {
    public var record: ResourceRecord
    /// In the order they are rendered, each with its member name.
    public var children: [(name: String, records: [ResourceRecord])]

    public init(record: ResourceRecord, children: [(name: String, records: [ResourceRecord])] = []) {
        self.record = record
        self.children = children
    }

    public static func == (a: ResourceView, b: ResourceView) -> Bool {
        a.record == b.record && a.children.count == b.children.count
            && zip(a.children, b.children).allSatisfy { $0.name == $1.name && $0.records == $1.records }
    }
}

/// Renders the representations of §4.
///
/// Member order (decided): `service_id` (top level only), the resource's own id, the
/// resource-level fields, `started`, `completed`, the extensions as sent, then the child
/// arrays in the order asked for.
public enum Representation {
    public static func render(_ view: ResourceView) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(estimate(view.record) + 64)
        append(view, topLevel: true, to: &out)
        return out
    }

    /// A JSON array of top-level representations (Query Tasks). Each element is a whole
    /// resource that stands alone, so each carries its `service_id`.
    public static func renderList(_ records: [ResourceRecord]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(records.reduce(2) { $0 + estimate($1) + 1 })
        for (i, record) in records.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            append(ResourceView(record: record), topLevel: true, to: &out)
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    /// `{"service_id":N}`, `{"state_id":N}`, `{"task_id":N}`: the body of a 201.
    /// Written straight into the buffer the answer goes out in.
    public static func created(_ kind: ResourceKind, id: Int64) -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 32)
        out.writeInteger(UInt8(ascii: "{"))
        var w = ObjectWriter(into: consume out)
        w.int(kind.idKey, id)
        w.out.writeInteger(UInt8(ascii: "}"))
        return w.out
    }

    private static func estimate(_ r: ResourceRecord) -> Int {
        r.head.count + r.started.count + (r.completed?.count ?? 0) + r.extensions.count + 80
    }

    private static func append(_ view: ResourceView, topLevel: Bool, to out: inout [UInt8]) {
        let r = view.record
        var w = ObjectWriter(into: out)
        out = []
        w.out.append(UInt8(ascii: "{"))
        if topLevel || r.kind == .service { w.int("service_id", r.serviceID) }
        if r.kind != .service { w.int(r.kind.idKey, r.id) }
        w.raw(r.head)
        w.object("started", members: r.started)
        if let completed = r.completed { w.object("completed", members: completed) }
        w.raw(r.extensions)
        for child in view.children {
            w.key(child.name)
            w.out.append(UInt8(ascii: "["))
            for (i, record) in child.records.enumerated() {
                if i > 0 { w.out.append(UInt8(ascii: ",")) }
                append(ResourceView(record: record), topLevel: false, to: &w.out)
            }
            w.out.append(UInt8(ascii: "]"))
        }
        w.out.append(UInt8(ascii: "}"))
        out = w.out
    }
}
