/// The wire format of the batch extension (README, "The batch extension"): many operations of
/// the contract in one `POST {base}/batch`, one result per operation back, in order. Pure, no
/// I/O: the core decodes requests and encodes responses with it, the gateway the other way
/// round. Every integer is big-endian.
///
/// ```
/// request  = "CSB2" count:u32 item*            (count ≥ 1)
/// item     = method:u8 (1 GET, 2 POST, 3 DELETE)
///            target_len:u16 target  tenant_len:u16 tenant  auth_len:u16 auth
///            key_len:u16 key  key_flags:u8 (bit 0: the key was made by a gateway; bit 1: it is
///            sent for the first time, so the core need not look it up; bit 2: a trace follows)
///            [trace_id:16 parent_id:8 trace_flags:u8]   (only with bit 2)
///            body_len:u32 body
/// response = "CSR2" count:u32 result*          (count = the request's count, same order)
/// result   = status:u16 location_len:u16 location  retry_after:u16 (0 = none)
///            flags:u8 (bit 0: a replay of an idempotency key)  body_len:u32 body
/// ```
///
/// Version 1 (`CSB1`/`CSR1`: no key, no flags) is still read, and answered in version 1, so
/// a gateway of the version before keeps working against a newer core. `key` is the item's
/// `Idempotency-Key` (empty: none).
///
/// The trace (bit 2 of `key_flags`, README "Tracing") is the W3C `traceparent` of the item's
/// single call, in binary: the 16-byte trace id, the 8-byte id of the gateway's span for the
/// call (the core's parent) and the trace flags. It was added within version 2: items without
/// bit 2 are exactly the version 2 of before, so a core reads batches of older gateways as it
/// did. A core of before reads bit 2 as nothing and the 25 bytes as the body's length, so
/// upgrade cores before gateways (as for version 2); a trace id or parent id of zero is
/// invalid (W3C §3.2.2.3) and read as no trace.
///
/// `target` is the path and query relative to the base path (`/services/7/tasks/start`); an
/// empty `tenant` or `auth` means no `ContactCenterId` or `Authorization` header. A body is
/// the canonical JSON a REST client would send (implicitly `application/json`). Text fields
/// are UTF-8; invalid UTF-8 is not a framing error (it is replaced with U+FFFD, so the item
/// fails its own checks: a route that does not parse, a tenant that is not visible ASCII).
public enum BatchCodec {
    /// The media type of both directions.
    public static let contentType = "application/x-cs-batch"
    /// The path of the endpoint, relative to the base path.
    public static let path = "/batch"

    static let requestMagic: [UInt8] = Array("CSB2".utf8)
    static let responseMagic: [UInt8] = Array("CSR2".utf8)
    static let requestMagicV1: [UInt8] = Array("CSB1".utf8)
    static let responseMagicV1: [UInt8] = Array("CSR1".utf8)
    /// method, three u16 lengths, one u32 length (version 1).
    static let minimumItemBytesV1 = 1 + 2 + 2 + 2 + 4
    /// and a key's u16 length and its flags byte.
    static let minimumItemBytes = minimumItemBytesV1 + 2 + 1
    /// status, two u16s, one u32 length (version 1).
    static let minimumResultBytesV1 = 2 + 2 + 2 + 4
    /// and the flags byte.
    static let minimumResultBytes = minimumResultBytesV1 + 1
    static let headerBytes = 8
    /// trace id, parent id, trace flags (bit 2 of an item's key flags).
    static let traceBytes = 16 + 8 + 1

    // MARK: Requests

    /// The bytes of a request carrying `items` (at least one).
    public static func encodeRequest(_ items: [BatchItem]) throws(BatchCodecError) -> [UInt8] {
        guard !items.isEmpty else { throw .emptyBatch }
        guard items.count <= UInt32.max else { throw .fieldTooLong(field: "count", length: items.count) }
        var size = headerBytes
        for item in items {
            size += minimumItemBytes + item.target.utf8.count + (item.tenant?.utf8.count ?? 0)
                + (item.authorization?.utf8.count ?? 0) + item.body.count + (item.trace == nil ? 0 : traceBytes)
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        out += requestMagic
        appendU32(UInt32(items.count), to: &out)
        for item in items {
            try appendItem(item, to: &out)
        }
        return out
    }

    /// Appends one item to a request whose header was written by `appendRequestHeader`: for
    /// callers that build a batch item by item.
    public static func appendItem(_ item: BatchItem, to out: inout [UInt8]) throws(BatchCodecError) {
        out.append(item.method.rawValue)
        try appendText16(item.target, field: "target", to: &out)
        try appendText16(item.tenant ?? "", field: "tenant", to: &out)
        try appendText16(item.authorization ?? "", field: "auth", to: &out)
        try appendText16(item.idempotencyKey ?? "", field: "key", to: &out)
        out.append((item.keyMadeByGateway ? 1 : 0) | (item.keyIsFresh ? 2 : 0) | (item.trace == nil ? 0 : 4))
        if let trace = item.trace {
            appendU64(trace.traceIDHigh, to: &out)
            appendU64(trace.traceIDLow, to: &out)
            appendU64(trace.parentID, to: &out)
            out.append(trace.flags)
        }
        try appendBytes32(item.body, field: "body", to: &out)
    }

    /// Writes the magic and the item count of a request.
    public static func appendRequestHeader(count: Int, to out: inout [UInt8]) throws(BatchCodecError) {
        guard count > 0 else { throw .emptyBatch }
        guard count <= UInt32.max else { throw .fieldTooLong(field: "count", length: count) }
        out += requestMagic
        appendU32(UInt32(count), to: &out)
    }

    /// The items of a request. `maxItems`: a count above it is refused from the header, before
    /// any item is read (`BatchCodecError.tooManyItems`, a 413).
    public static func decodeRequest(_ bytes: [UInt8], maxItems: Int = Int.max) throws(BatchCodecError) -> [BatchItem] {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(BatchCodecError) -> [BatchItem] in try decodeRequest(raw, maxItems: maxItems) }
        }
        return try result.get()
    }

    public static func decodeRequest(
        _ bytes: UnsafeRawBufferPointer, maxItems: Int = Int.max
    ) throws(BatchCodecError) -> [BatchItem] {
        try decodeRequestVersioned(bytes, maxItems: maxItems).items
    }

    /// The items and the format's version (1 or 2): the answer goes in the same version.
    public static func decodeRequestVersioned(
        _ bytes: [UInt8], maxItems: Int = Int.max
    ) throws(BatchCodecError) -> (items: [BatchItem], version: Int) {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(BatchCodecError) -> (items: [BatchItem], version: Int) in
                try decodeRequestVersioned(raw, maxItems: maxItems)
            }
        }
        return try result.get()
    }

    public static func decodeRequestVersioned(
        _ bytes: UnsafeRawBufferPointer, maxItems: Int = Int.max
    ) throws(BatchCodecError) -> (items: [BatchItem], version: Int) {
        var reader = Reader(bytes)
        let version = try reader.magic(requestMagic, or: requestMagicV1)
        let count = Int(try reader.u32("count"))
        guard count > 0 else { throw .emptyBatch }
        guard count <= maxItems else { throw .tooManyItems(count: count, limit: maxItems) }
        // The count is the sender's word: never reserve more than the bytes can hold.
        guard count <= reader.remaining / (version == 2 ? minimumItemBytes : minimumItemBytesV1) else {
            throw .truncated(offset: bytes.count, needed: "\(count) items")
        }
        var items: [BatchItem] = []
        items.reserveCapacity(count)
        for index in 0..<count {
            let methodOffset = reader.offset
            let byte = try reader.u8("method of item \(index)")
            guard let method = BatchItem.Method(rawValue: byte) else {
                throw .unknownMethod(byte, item: index, offset: methodOffset)
            }
            let target = try reader.text16("target of item \(index)")
            let tenant = try reader.text16("tenant of item \(index)")
            let auth = try reader.text16("auth of item \(index)")
            var key = ""
            var keyFlags: UInt8 = 0
            var trace: TraceParent?
            if version == 2 {
                key = try reader.text16("key of item \(index)")
                keyFlags = try reader.u8("key flags of item \(index)")
                if keyFlags & 4 != 0 {
                    let high = try reader.u64("trace id of item \(index)")
                    let low = try reader.u64("trace id of item \(index)")
                    let parent = try reader.u64("trace parent id of item \(index)")
                    let flags = try reader.u8("trace flags of item \(index)")
                    trace = TraceParent(traceIDHigh: high, traceIDLow: low, parentID: parent, flags: flags)
                }
            }
            let body = try reader.bytes32("body of item \(index)")
            items.append(BatchItem(method: method, target: target, tenant: tenant.isEmpty ? nil : tenant,
                                   authorization: auth.isEmpty ? nil : auth, body: body,
                                   idempotencyKey: key.isEmpty ? nil : key, keyMadeByGateway: keyFlags & 1 != 0,
                                   keyIsFresh: keyFlags & 3 == 3, trace: trace))
        }
        guard reader.remaining == 0 else { throw .trailingBytes(offset: reader.offset, count: reader.remaining) }
        return (items, version)
    }

    // MARK: Responses

    /// The bytes of a response carrying `results` (one per request item, in order), in the
    /// version of the request.
    public static func encodeResponse(_ results: [BatchResult], version: Int = 2) throws(BatchCodecError) -> [UInt8] {
        guard !results.isEmpty else { throw .emptyBatch }
        guard results.count <= UInt32.max else { throw .fieldTooLong(field: "count", length: results.count) }
        var size = headerBytes
        for r in results { size += minimumResultBytes + (r.location?.utf8.count ?? 0) + r.body.count }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        out += version == 1 ? responseMagicV1 : responseMagic
        appendU32(UInt32(results.count), to: &out)
        for r in results {
            guard (0...Int(UInt16.max)).contains(r.status) else { throw .fieldTooLong(field: "status", length: r.status) }
            appendU16(UInt16(r.status), to: &out)
            try appendText16(r.location ?? "", field: "location", to: &out)
            // 0 is "none"; a wait beyond the field's range is capped, not refused.
            appendU16(r.retryAfter.map { UInt16(clamping: max($0, 0)) } ?? 0, to: &out)
            if version != 1 { out.append(r.replayed ? 1 : 0) }
            try appendBytes32(r.body, field: "body", to: &out)
        }
        return out
    }

    public static func decodeResponse(_ bytes: [UInt8]) throws(BatchCodecError) -> [BatchResult] {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(BatchCodecError) -> [BatchResult] in try decodeResponse(raw) }
        }
        return try result.get()
    }

    public static func decodeResponse(_ bytes: UnsafeRawBufferPointer) throws(BatchCodecError) -> [BatchResult] {
        var reader = Reader(bytes)
        let version = try reader.magic(responseMagic, or: responseMagicV1)
        let count = Int(try reader.u32("count"))
        guard count > 0 else { throw .emptyBatch }
        guard count <= reader.remaining / (version == 2 ? minimumResultBytes : minimumResultBytesV1) else {
            throw .truncated(offset: bytes.count, needed: "\(count) results")
        }
        var results: [BatchResult] = []
        results.reserveCapacity(count)
        for index in 0..<count {
            let status = Int(try reader.u16("status of result \(index)"))
            let location = try reader.text16("location of result \(index)")
            let retryAfter = Int(try reader.u16("retry_after of result \(index)"))
            let flags = version == 2 ? try reader.u8("flags of result \(index)") : 0
            let body = try reader.bytes32("body of result \(index)")
            results.append(BatchResult(status: status, location: location.isEmpty ? nil : location,
                                       retryAfter: retryAfter == 0 ? nil : retryAfter, body: body, replayed: flags & 1 != 0))
        }
        guard reader.remaining == 0 else { throw .trailingBytes(offset: reader.offset, count: reader.remaining) }
        return results
    }

    // MARK: Primitives

    static func appendU16(_ v: UInt16, to out: inout [UInt8]) {
        out.append(UInt8(v >> 8))
        out.append(UInt8(truncatingIfNeeded: v))
    }

    static func appendU32(_ v: UInt32, to out: inout [UInt8]) {
        out.append(UInt8(v >> 24))
        out.append(UInt8(truncatingIfNeeded: v >> 16))
        out.append(UInt8(truncatingIfNeeded: v >> 8))
        out.append(UInt8(truncatingIfNeeded: v))
    }

    static func appendU64(_ v: UInt64, to out: inout [UInt8]) {
        appendU32(UInt32(truncatingIfNeeded: v >> 32), to: &out)
        appendU32(UInt32(truncatingIfNeeded: v), to: &out)
    }

    static func appendText16(_ s: String, field: String, to out: inout [UInt8]) throws(BatchCodecError) {
        let n = s.utf8.count
        guard n <= Int(UInt16.max) else { throw .fieldTooLong(field: field, length: n) }
        appendU16(UInt16(n), to: &out)
        out += s.utf8
    }

    static func appendBytes32(_ b: [UInt8], field: String, to out: inout [UInt8]) throws(BatchCodecError) {
        guard b.count <= UInt32.max else { throw .fieldTooLong(field: field, length: b.count) }
        appendU32(UInt32(b.count), to: &out)
        out += b
    }

    /// A bounds-checked cursor: every read names what it reads, for the error message. The
    /// name is an autoclosure, built only when a read fails: building "status of result 17"
    /// eagerly cost 8 of the 10 mallocs per result of a decoded answer (micro-benchmark
    /// `BatchCodec decode`).
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var remaining: Int { bytes.count - offset }

        mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws(BatchCodecError) -> UnsafeRawBufferPointer {
            guard n <= remaining else { throw .truncated(offset: offset, needed: what()) }
            defer { offset += n }
            return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n])
        }

        /// Reads the magic of version 2 or 1; returns which.
        mutating func magic(_ v2: [UInt8], or v1: [UInt8]) throws(BatchCodecError) -> Int {
            guard remaining >= v2.count else { throw .badMagic }
            let got = try take(v2.count, "magic")
            if got.elementsEqual(v2) { return 2 }
            if got.elementsEqual(v1) { return 1 }
            throw .badMagic
        }

        mutating func u8(_ what: @autoclosure () -> String) throws(BatchCodecError) -> UInt8 {
            try take(1, what())[0]
        }

        mutating func u16(_ what: @autoclosure () -> String) throws(BatchCodecError) -> UInt16 {
            let b = try take(2, what())
            return UInt16(b[0]) << 8 | UInt16(b[1])
        }

        mutating func u32(_ what: @autoclosure () -> String) throws(BatchCodecError) -> UInt32 {
            let b = try take(4, what())
            return UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
        }

        mutating func u64(_ what: @autoclosure () -> String) throws(BatchCodecError) -> UInt64 {
            let b = try take(8, what())
            var v: UInt64 = 0
            for byte in b { v = v << 8 | UInt64(byte) }
            return v
        }

        mutating func text16(_ what: @autoclosure () -> String) throws(BatchCodecError) -> String {
            let n = Int(try u16(what()))
            return String(decoding: try take(n, what()), as: UTF8.self)
        }

        mutating func bytes32(_ what: @autoclosure () -> String) throws(BatchCodecError) -> [UInt8] {
            let n = Int(try u32(what()))
            return Array(try take(n, what()))
        }
    }
}

/// One operation of a batch request: what a single REST call would carry.
public struct BatchItem: Sendable, Equatable {
    public enum Method: UInt8, Sendable, CaseIterable {
        case get = 1, post = 2, delete = 3

        /// The HTTP method name.
        public var name: String {
            switch self {
            case .get: "GET"
            case .post: "POST"
            case .delete: "DELETE"
            }
        }

        public init?(name: String) {
            switch name {
            case "GET": self = .get
            case "POST": self = .post
            case "DELETE": self = .delete
            default: return nil
            }
        }
    }

    public var method: Method
    /// Path and query relative to the base path, e.g. `/services/7/tasks/start`.
    public var target: String
    /// The `ContactCenterId` header (§6); nil (sent as empty) is none.
    public var tenant: String?
    /// The `Authorization` header; nil (sent as empty) is none.
    public var authorization: String?
    /// The canonical JSON body, or empty.
    public var body: [UInt8]
    /// The `Idempotency-Key` of a write; nil (sent as empty) is none.
    public var idempotencyKey: String?
    /// The key was made by the gateway (for its own resends), not by the client.
    public var keyMadeByGateway: Bool
    /// A key made by the gateway, sent for the first time: unique by construction, so the
    /// core stores it without looking it up first. A resend clears it.
    public var keyIsFresh: Bool
    /// The `traceparent` the single call would carry (README, "Tracing"); nil: none.
    public var trace: TraceParent?

    public init(method: Method, target: String, tenant: String? = nil, authorization: String? = nil, body: [UInt8] = [],
                idempotencyKey: String? = nil, keyMadeByGateway: Bool = false, keyIsFresh: Bool = false,
                trace: TraceParent? = nil) {
        self.method = method
        self.target = target
        self.tenant = tenant
        self.authorization = authorization
        self.body = body
        self.idempotencyKey = idempotencyKey
        self.keyMadeByGateway = keyMadeByGateway
        self.keyIsFresh = keyMadeByGateway && keyIsFresh
        self.trace = trace
    }

    /// The item of a route of the contract: its method and its target relative to the base.
    public init(_ route: RESTRoute, tenant: String? = nil, authorization: String? = nil, body: [UInt8] = [],
                idempotencyKey: String? = nil, keyMadeByGateway: Bool = false, keyIsFresh: Bool = false,
                trace: TraceParent? = nil) {
        self.init(method: Method(name: route.method)!, target: route.target(basePath: ""),
                  tenant: tenant, authorization: authorization, body: body,
                  idempotencyKey: idempotencyKey, keyMadeByGateway: keyMadeByGateway, keyIsFresh: keyIsFresh,
                  trace: trace)
    }
}

/// The answer to one item: exactly what the single call would have answered.
public struct BatchResult: Sendable, Equatable {
    public var status: Int
    public var location: String?
    /// Seconds to wait before coming back (429/503); nil (sent as 0) is none.
    public var retryAfter: Int?
    /// JSON (a representation, `{"task_id":N}`, or the error shape of §5), or empty.
    public var body: [UInt8]
    /// The answer stored under the item's idempotency key, given again: nothing was written.
    public var replayed: Bool

    public init(status: Int, location: String? = nil, retryAfter: Int? = nil, body: [UInt8] = [], replayed: Bool = false) {
        self.status = status
        self.location = location
        self.retryAfter = retryAfter
        self.body = body
        self.replayed = replayed
    }
}

/// Why bytes are not a batch. Every one of these refuses the whole batch and changes nothing:
/// 400 `ValidationException`, except `tooManyItems` (413 `PayloadTooLargeException`).
public enum BatchCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first four bytes are not the magic of the direction.
    case badMagic
    /// A count of 0: a batch carries at least one item.
    case emptyBatch
    /// A length or a count runs past the end of the bytes.
    case truncated(offset: Int, needed: String)
    case unknownMethod(UInt8, item: Int, offset: Int)
    /// Bytes left after the last item.
    case trailingBytes(offset: Int, count: Int)
    /// The header announces more items than the receiver takes.
    case tooManyItems(count: Int, limit: Int)
    /// Encoding only: a value does not fit its length field.
    case fieldTooLong(field: String, length: Int)

    public var description: String {
        switch self {
        case .badMagic: "malformed batch: it does not start with the magic (CSB2 or CSB1 for requests, CSR2 or CSR1 for responses)"
        case .emptyBatch: "malformed batch: the item count is 0"
        case .truncated(let offset, let needed): "malformed batch: truncated at byte \(offset), reading the \(needed)"
        case .unknownMethod(let byte, let item, let offset):
            "malformed batch: item \(item) has the unknown method byte \(byte) at byte \(offset) (1 GET, 2 POST, 3 DELETE)"
        case .trailingBytes(let offset, let count): "malformed batch: \(count) bytes after the last item, at byte \(offset)"
        case .tooManyItems(let count, let limit): "a batch holds at most \(limit) items, this one has \(count)"
        case .fieldTooLong(let field, let length): "the batch field \(field) cannot hold \(length)"
        }
    }

    /// The answer of §5 for the whole batch.
    public var contextError: ContextError {
        switch self {
        case .tooManyItems: ContextError(status: 413, exception: "PayloadTooLargeException", message: description)
        default: .validation(description)
        }
    }
}

extension ContextError {
    /// A batch body over the configured size (413).
    public static func batchTooLarge(limit: Int) -> ContextError {
        ContextError(status: 413, exception: "PayloadTooLargeException", message: "batch larger than \(limit) bytes")
    }

    /// A batch that is not `application/x-cs-batch` (415).
    public static func batchUnsupportedMediaType(_ contentType: String?) -> ContextError {
        let got = contentType.map { "got \($0)" } ?? "no Content-Type"
        return ContextError(status: 415, exception: "UnsupportedMediaTypeException",
                            message: "a batch must be \(BatchCodec.contentType); \(got)")
    }
}
