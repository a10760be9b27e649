public import NIOCore

/// The wire format of the batch extension (README, "The batch extension"): many operations of
/// the contract in one `POST {base}/batch`, one result per operation back, in order. Pure, no
/// I/O: the core decodes requests and encodes responses with it, the gateway the other way
/// round. Every integer is big-endian.
///
/// ```
/// request  = "CSB3" count:u32 item*            (count ≥ 1)
/// item     = operation:u8 service_id:u64 child_id:u32 params_len:u16 params
///            tenant_len:u16 tenant  auth_len:u16 auth  key_len:u16 key
///            flags:u8 (bit 0: the key was made by a gateway; bit 1: it is sent for the first
///            time, so the core need not look it up; bit 2: a trace follows; bits 3-7: zero)
///            [trace_id:16 parent_id:8 trace_flags:u8]   (only with bit 2)
///            body_len:u32 body
/// response = "CSR3" count:u32 result*          (count = the request's count, same order)
/// result   = status:u16 location_len:u16 location  retry_after:u16 (0 = none)
///            flags:u8 (bit 0: a replay of an idempotency key)  body_len:u32 body
/// ```
///
/// An item is the operation itself, typed, not a path: `operation` is its number in the order
/// of CONTEXT-SERVICES.md §2 (`RESTOperation`: 1 StartService, 2 CompleteService,
/// 3 QueryService, 4 DeleteService, 5 StartState, 6 CompleteState, 7 QueryState, 8 StartTask,
/// 9 CompleteTask, 10 QueryTask, 11 QueryTasks); `service_id` is 0 for StartService, which has
/// none; `child_id` is the state id (CompleteState, QueryState) or task id (CompleteTask,
/// QueryTask), 0 for the others. `params` holds what the query string carries in REST:
///
/// ```
/// QueryService  params = include:u8 (bit 0 active_states, 1 completed_states, 2 active_tasks,
///                                    3 completed_tasks)
/// QueryState    params = include:u8 (bit 0 active_tasks, 1 completed_tasks)
/// QueryTasks    params = status:u8 (0 all, 1 active, 2 completed) state_id:u32 (0: none)
///                        (type_len:u16 type)*          (task_types, to the end of params)
/// the others    params = nothing (params_len 0)
/// ```
///
/// Framing (magic, count, every length, the flags' reserved bits, trailing bytes) is checked
/// for the whole batch: a batch that does not frame is refused whole (`BatchCodecError`, 400;
/// 413 for too many items) and nothing runs. What an item says is checked for that item only
/// (`ReceivedBatchItem.route`): an unknown operation, an id of 0 or out of range, an id the
/// operation does not take, params of the wrong length or with unknown bits, a task type that
/// is not UTF-8 fail that item with the error the equivalent REST request gets (the same
/// `service_id must be…` message, 404 for an operation that does not exist), and the other
/// items run. Empty task types are dropped, as REST's `task_types=a,,b` drops them.
///
/// `key` is the item's `Idempotency-Key` (empty: none); an empty `tenant` or `auth` means no
/// `ContactCenterId` or `Authorization` header. A body is the canonical JSON a REST client
/// would send (implicitly `application/json`); the core validates it like any other body.
/// Text fields are UTF-8; invalid UTF-8 in a header field is not a framing error (it is
/// replaced with U+FFFD, so the item fails its own checks: a tenant that is not visible ASCII).
///
/// The trace (bit 2 of `flags`, README "Tracing") is the W3C `traceparent` of the item's
/// single call, in binary: the 16-byte trace id, the 8-byte id of the gateway's span for the
/// call (the core's parent) and the trace flags. A trace id or parent id of zero is invalid
/// (W3C §3.2.2.3) and read as no trace.
///
/// Versions 1 and 2 (`CSB1`/`CSB2`: a method byte and a path per item) are gone: a core
/// answers them 400 (bad magic). Upgrade gateways and cores together.
public enum BatchCodec {
    /// The media type of both directions.
    public static let contentType = "application/x-cs-batch"
    /// The path of the endpoint, relative to the base path.
    public static let path = "/batch"

    static let requestMagic: [UInt8] = Array("CSB3".utf8)
    static let responseMagic: [UInt8] = Array("CSR3".utf8)
    /// operation, service id, child id, params length, three u16 lengths, flags, body length.
    static let minimumItemBytes = 1 + 8 + 4 + 2 + 2 + 2 + 2 + 1 + 4
    /// status, two u16s, flags, one u32 length.
    static let minimumResultBytes = 2 + 2 + 2 + 1 + 4
    public static let headerBytes = 8
    /// trace id, parent id, trace flags (bit 2 of an item's flags).
    static let traceBytes = 16 + 8 + 1

    // MARK: Requests

    /// The bytes of a request carrying `items` (at least one), as an array (tests, tools; a
    /// gateway writes items into its outbound buffer with `appendItem`).
    public static func encodeRequest(_ items: [BatchItem]) throws(BatchCodecError) -> [UInt8] {
        var size = headerBytes
        for item in items { size += try encodedSize(of: item) }
        var out = ByteBufferAllocator().buffer(capacity: size)
        try appendRequestHeader(count: items.count, to: &out)
        for item in items {
            try appendItem(item, to: &out)
        }
        return Array(out.readableBytesView)
    }

    /// The bytes `item` takes in a request, its fields checked against their length fields:
    /// a sender calls it once per item, before queueing it, so an item the format cannot carry
    /// fails alone instead of failing its batch.
    public static func encodedSize(of item: BatchItem) throws(BatchCodecError) -> Int {
        let tenant = item.tenant?.utf8.count ?? 0
        let auth = item.authorization?.utf8.count ?? 0
        let key = item.idempotencyKey?.utf8.count ?? 0
        let params = paramsSize(item.route)
        guard tenant <= Int(UInt16.max) else { throw .fieldTooLong(field: "tenant", length: tenant) }
        guard auth <= Int(UInt16.max) else { throw .fieldTooLong(field: "auth", length: auth) }
        guard key <= Int(UInt16.max) else { throw .fieldTooLong(field: "key", length: key) }
        guard params <= Int(UInt16.max) else { throw .fieldTooLong(field: "params", length: params) }
        let body = item.body.readableBytes
        guard body <= Int(UInt32.max) else { throw .fieldTooLong(field: "body", length: body) }
        return minimumItemBytes + params + tenant + auth + key + body + (item.trace == nil ? 0 : traceBytes)
    }

    /// Writes the magic and the item count of a request, for callers that build a batch item
    /// by item (`appendItem`).
    public static func appendRequestHeader(count: Int, to out: inout ByteBuffer) throws(BatchCodecError) {
        guard count > 0 else { throw .emptyBatch }
        guard count <= UInt32.max else { throw .fieldTooLong(field: "count", length: count) }
        out.writeBytes(requestMagic)
        out.writeU32(UInt32(count))
    }

    /// Appends one item to a request whose header was written by `appendRequestHeader`.
    public static func appendItem(_ item: BatchItem, to out: inout ByteBuffer) throws(BatchCodecError) {
        _ = try encodedSize(of: item)
        let route = item.route
        out.writeU8(route.operation.rawValue)
        // Ids come from a parsed route (in range); one out of range is sent as a value the
        // core refuses (never truncated into a valid id).
        out.writeU64(UInt64(bitPattern: route.serviceID))
        out.writeU32(UInt32(exactly: route.childID) ?? UInt32.max)
        out.writeU16(UInt16(paramsSize(route)))
        switch route {
        case .queryService(_, let include):
            out.writeU8(include.bits)
        case .queryState(_, _, let include):
            out.writeU8(include.bits)
        case .queryTasks(_, let filter):
            let status: UInt8 = switch filter.status {
            case .all: 0
            case .active: 1
            case .completed: 2
            }
            out.writeU8(status)
            out.writeU32(filter.stateID.map { UInt32(exactly: $0) ?? UInt32.max } ?? 0)
            for type in filter.taskTypes {
                out.writeU16(UInt16(type.utf8.count))
                out.writeText(type)
            }
        default:
            break
        }
        writeText16(item.tenant, to: &out)
        writeText16(item.authorization, to: &out)
        writeText16(item.idempotencyKey, to: &out)
        out.writeU8((item.keyMadeByGateway ? 1 : 0) | (item.keyIsFresh ? 2 : 0) | (item.trace == nil ? 0 : 4))
        if let trace = item.trace {
            out.writeU64(trace.traceIDHigh)
            out.writeU64(trace.traceIDLow)
            out.writeU64(trace.parentID)
            out.writeU8(trace.flags)
        }
        out.writeU32(UInt32(item.body.readableBytes))
        out.writeImmutableBuffer(item.body)
    }

    /// `appendRequestHeader` onto a byte array (tests, tools).
    public static func appendRequestHeader(count: Int, to out: inout [UInt8]) throws(BatchCodecError) {
        var buffer = ByteBuffer()
        try appendRequestHeader(count: count, to: &buffer)
        out += buffer.readableBytesView
    }

    /// `appendItem` onto a byte array (tests, tools).
    public static func appendItem(_ item: BatchItem, to out: inout [UInt8]) throws(BatchCodecError) {
        var buffer = ByteBuffer()
        try appendItem(item, to: &buffer)
        out += buffer.readableBytesView
    }

    private static func paramsSize(_ route: RESTRoute) -> Int {
        switch route {
        case .queryService, .queryState: 1
        case .queryTasks(_, let filter): filter.taskTypes.reduce(1 + 4) { $0 + 2 + $1.utf8.count }
        default: 0
        }
    }

    private static func writeText16(_ s: String?, to out: inout ByteBuffer) {
        guard let s else { return out.writeU16(0) }
        out.writeU16(UInt16(s.utf8.count))  // checked by `encodedSize`
        out.writeText(s)
    }

    /// The items of a request. `maxItems`: a count above it is refused from the header, before
    /// any item is read (`BatchCodecError.tooManyItems`, a 413).
    public static func decodeRequest(_ bytes: [UInt8], maxItems: Int = Int.max) throws(BatchCodecError) -> [ReceivedBatchItem] {
        try decodeRequest(ByteBuffer(bytes: bytes), maxItems: maxItems)
    }

    /// The items of a request read in place from the buffer it was received into: an item's
    /// body is a slice of `buffer` (no copy); only the header texts become Strings.
    public static func decodeRequest(_ buffer: ByteBuffer, maxItems: Int = Int.max) throws(BatchCodecError) -> [ReceivedBatchItem] {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(BatchCodecError) -> [ReceivedBatchItem] in
                try decodeRequest(raw, slicing: buffer, maxItems: maxItems)
            }
        }
        return try result.get()
    }

    private static func decodeRequest(
        _ bytes: UnsafeRawBufferPointer, slicing buffer: ByteBuffer, maxItems: Int
    ) throws(BatchCodecError) -> [ReceivedBatchItem] {
        var reader = Reader(bytes)
        try reader.magic(requestMagic)
        let count = Int(try reader.u32("count"))
        guard count > 0 else { throw .emptyBatch }
        guard count <= maxItems else { throw .tooManyItems(count: count, limit: maxItems) }
        // The count is the sender's word: never reserve more than the bytes can hold.
        guard count <= reader.remaining / minimumItemBytes else {
            throw .truncated(offset: bytes.count, needed: "\(count) items")
        }
        var items: [ReceivedBatchItem] = []
        items.reserveCapacity(count)
        for index in 0..<count {
            let operation = try reader.u8("operation of item \(index)")
            let serviceID = try reader.u64("service_id of item \(index)")
            let childID = try reader.u32("child_id of item \(index)")
            let paramsLength = Int(try reader.u16("params of item \(index)"))
            let params = try reader.take(paramsLength, "params of item \(index)")
            let tenant = try reader.text16("tenant of item \(index)")
            let auth = try reader.text16("auth of item \(index)")
            let key = try reader.text16("key of item \(index)")
            let flagsOffset = reader.offset
            let flags = try reader.u8("flags of item \(index)")
            guard flags & ~7 == 0 else { throw .unknownFlags(flags, item: index, offset: flagsOffset) }
            var trace: TraceParent?
            if flags & 4 != 0 {
                let high = try reader.u64("trace id of item \(index)")
                let low = try reader.u64("trace id of item \(index)")
                let parent = try reader.u64("trace parent id of item \(index)")
                let traceFlags = try reader.u8("trace flags of item \(index)")
                trace = TraceParent(traceIDHigh: high, traceIDLow: low, parentID: parent, flags: traceFlags)
            }
            let body = try reader.slice32("body of item \(index)", of: buffer)
            items.append(ReceivedBatchItem(
                route: route(operation: operation, serviceID: serviceID, childID: childID, params: params),
                tenant: tenant.isEmpty ? nil : tenant, authorization: auth.isEmpty ? nil : auth, body: body,
                idempotencyKey: key.isEmpty ? nil : key, keyMadeByGateway: flags & 1 != 0,
                keyIsFresh: flags & 3 == 3, trace: trace))
        }
        guard reader.remaining == 0 else { throw .trailingBytes(offset: reader.offset, count: reader.remaining) }
        return items
    }

    /// The route an item names, or the error the equivalent REST request gets.
    static func route(
        operation byte: UInt8, serviceID: UInt64, childID: UInt32, params: UnsafeRawBufferPointer
    ) -> Result<RESTRoute, ContextError> {
        guard let operation = RESTOperation(rawValue: byte) else {
            return .failure(.notFound("no operation has the number \(byte) (the batch format numbers them 1 to 11)"))
        }
        let sid = Int64(truncatingIfNeeded: serviceID)
        if operation.takesServiceID {
            guard serviceID >= 1, serviceID <= UInt64(Int64.max) else {
                return .failure(.validation(RESTRoute.serviceIDMessage(serviceID)))
            }
        } else if serviceID != 0 {
            return .failure(.validation("\(operation.name) names no service; the item's service_id must be 0, got \(serviceID)"))
        }
        let cid = Int64(childID)
        if let name = operation.childIDName {
            guard ResourceID.childRange.contains(cid) else { return .failure(.validation(RESTRoute.childIDMessage(name, childID))) }
        } else if childID != 0 {
            return .failure(.validation("\(operation.name) names no state or task; the item's child_id must be 0, got \(childID)"))
        }
        func paramsLength(_ expected: Int) -> ContextError? {
            params.count == expected ? nil
                : .validation("the parameters of \(operation.name) take \(expected) bytes in a batch item, got \(params.count)")
        }
        switch operation {
        case .queryService:
            if let error = paramsLength(1) { return .failure(error) }
            let bits = params[0]
            guard let include = ServiceInclude(bits: bits) else {
                return .failure(.validation("the include flags of QueryService have unknown bits: \(bits)"))
            }
            return .success(.queryService(serviceID: sid, include: include))
        case .queryState:
            if let error = paramsLength(1) { return .failure(error) }
            let bits = params[0]
            guard let include = StateInclude(bits: bits) else {
                return .failure(.validation("the include flags of QueryState have unknown bits: \(bits)"))
            }
            return .success(.queryState(serviceID: sid, stateID: cid, include: include))
        case .queryTasks:
            return queryTasks(serviceID: sid, params: params)
        default:
            if let error = paramsLength(0) { return .failure(error) }
        }
        return switch operation {
        case .startService: .success(.startService)
        case .endService: .success(.endService(serviceID: sid))
        case .deleteService: .success(.deleteService(serviceID: sid))
        case .startState: .success(.startState(serviceID: sid))
        case .endState: .success(.endState(serviceID: sid, stateID: cid))
        case .startTask: .success(.startTask(serviceID: sid))
        case .endTask: .success(.endTask(serviceID: sid, taskID: cid))
        case .queryTask: .success(.queryTask(serviceID: sid, taskID: cid))
        case .queryService, .queryState, .queryTasks: fatalError("handled above")
        }
    }

    private static func queryTasks(serviceID: Int64, params: UnsafeRawBufferPointer) -> Result<RESTRoute, ContextError> {
        var reader = Reader(params)
        var filter = TaskFilter()
        do throws(BatchCodecError) {
            switch try reader.u8("status") {
            case 0: filter.status = .all
            case 1: filter.status = .active
            case 2: filter.status = .completed
            case let other: return .failure(.validation("the status filter of QueryTasks must be 0, 1 or 2, got \(other)"))
            }
            let state = try reader.u32("state_id")
            if state != 0 {
                guard ResourceID.childRange.contains(Int64(state)) else {
                    return .failure(.validation(RESTRoute.childIDMessage("state_id", state)))
                }
                filter.stateID = Int64(state)
            }
            while reader.remaining > 0 {
                let n = Int(try reader.u16("task type"))
                let raw = try reader.take(n, "task type")
                guard n > 0 else { continue }  // as REST's `task_types=a,,b`
                guard let type = String(validating: raw, as: UTF8.self) else {
                    return .failure(.validation("a task type of QueryTasks does not decode to UTF-8"))
                }
                filter.taskTypes.append(type)
            }
        } catch {
            return .failure(.validation("the parameters of QueryTasks in a batch item are cut short (\(error))"))
        }
        return .success(.queryTasks(serviceID: serviceID, filter: filter))
    }

    // MARK: Responses

    /// The bytes of a response carrying `results` (one per request item, in order).
    /// Written into one buffer sized once: the core sends it as the HTTP body as it is.
    public static func encodeResponse(_ results: [BatchResult]) throws(BatchCodecError) -> ByteBuffer {
        guard !results.isEmpty else { throw .emptyBatch }
        guard results.count <= UInt32.max else { throw .fieldTooLong(field: "count", length: results.count) }
        var size = headerBytes
        for r in results { size += minimumResultBytes + (r.location?.utf8.count ?? 0) + r.body.readableBytes }
        // Allocated at its size: `ByteBuffer()` then `reserveCapacity` cost one malloc more.
        var out = ByteBufferAllocator().buffer(capacity: size)
        out.writeBytes(responseMagic)
        out.writeU32(UInt32(results.count))
        for r in results {
            guard (0...Int(UInt16.max)).contains(r.status) else { throw .fieldTooLong(field: "status", length: r.status) }
            out.writeU16(UInt16(r.status))
            let location = r.location?.utf8.count ?? 0
            guard location <= Int(UInt16.max) else { throw .fieldTooLong(field: "location", length: location) }
            writeText16(r.location, to: &out)
            // 0 is "none"; a wait beyond the field's range is capped, not refused.
            out.writeU16(r.retryAfter.map { UInt16(clamping: max($0, 0)) } ?? 0)
            out.writeU8(r.replayed ? 1 : 0)
            let body = r.body.readableBytes
            guard body <= Int(UInt32.max) else { throw .fieldTooLong(field: "body", length: body) }
            out.writeU32(UInt32(body))
            out.writeImmutableBuffer(r.body)
        }
        return out
    }

    public static func decodeResponse(_ bytes: [UInt8]) throws(BatchCodecError) -> [BatchResult] {
        try decodeResponse(ByteBuffer(bytes: bytes))
    }

    /// The results of an answer read in place: each body is a slice of `buffer` (no copy).
    public static func decodeResponse(_ buffer: ByteBuffer) throws(BatchCodecError) -> [BatchResult] {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(BatchCodecError) -> [BatchResult] in try decodeResponse(raw, slicing: buffer) }
        }
        return try result.get()
    }

    private static func decodeResponse(_ bytes: UnsafeRawBufferPointer, slicing buffer: ByteBuffer) throws(BatchCodecError) -> [BatchResult] {
        var reader = Reader(bytes)
        try reader.magic(responseMagic)
        let count = Int(try reader.u32("count"))
        guard count > 0 else { throw .emptyBatch }
        guard count <= reader.remaining / minimumResultBytes else {
            throw .truncated(offset: bytes.count, needed: "\(count) results")
        }
        var results: [BatchResult] = []
        results.reserveCapacity(count)
        for index in 0..<count {
            let status = Int(try reader.u16("status of result \(index)"))
            let location = try reader.text16("location of result \(index)")
            let retryAfter = Int(try reader.u16("retry_after of result \(index)"))
            let flags = try reader.u8("flags of result \(index)")
            let body = try reader.slice32("body of result \(index)", of: buffer)
            results.append(BatchResult(status: status, location: location.isEmpty ? nil : location,
                                       retryAfter: retryAfter == 0 ? nil : retryAfter, body: body, replayed: flags & 1 != 0))
        }
        guard reader.remaining == 0 else { throw .trailingBytes(offset: reader.offset, count: reader.remaining) }
        return results
    }

    // MARK: Reading

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

        mutating func magic(_ expected: [UInt8]) throws(BatchCodecError) {
            guard remaining >= expected.count else { throw .badMagic }
            guard try take(expected.count, "magic").elementsEqual(expected) else { throw .badMagic }
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

        /// A u32 length and that many bytes, as a slice of `buffer` (whose readable bytes are
        /// `bytes`): shares its storage, no copy.
        mutating func slice32(_ what: @autoclosure () -> String, of buffer: ByteBuffer) throws(BatchCodecError) -> ByteBuffer {
            let n = Int(try u32(what()))
            let start = offset
            _ = try take(n, what())
            return buffer.getSlice(at: buffer.readerIndex + start, length: n)!
        }
    }
}

/// Big-endian integers, texts and bodies as the batch format writes them.
extension ByteBuffer {
    mutating func writeU8(_ v: UInt8) { writeInteger(v) }
    mutating func writeU16(_ v: UInt16) { writeInteger(v) }  // big-endian by default
    mutating func writeU32(_ v: UInt32) { writeInteger(v) }
    mutating func writeU64(_ v: UInt64) { writeInteger(v) }
    mutating func writeText(_ text: String) { writeString(text) }
}

/// One operation of a batch request, as a gateway sends it: the typed route of the call and
/// what its single REST call would carry in headers and body.
public struct BatchItem: Sendable, Equatable {
    /// The operation and its ids and parameters.
    public var route: RESTRoute
    /// The `ContactCenterId` header (§6); nil (sent as empty) is none.
    public var tenant: String?
    /// The `Authorization` header; nil (sent as empty) is none.
    public var authorization: String?
    /// The canonical JSON body, or empty.
    public var body: ByteBuffer
    /// The `Idempotency-Key` of a write; nil (sent as empty) is none.
    public var idempotencyKey: String?
    /// The key was made by the gateway (for its own resends), not by the client.
    public var keyMadeByGateway: Bool
    /// A key made by the gateway, sent for the first time: unique by construction, so the
    /// core stores it without looking it up first. A resend clears it.
    public var keyIsFresh: Bool
    /// The `traceparent` the single call would carry (README, "Tracing"); nil: none.
    public var trace: TraceParent?

    public init(_ route: RESTRoute, tenant: String? = nil, authorization: String? = nil, body: ByteBuffer = ByteBuffer(),
                idempotencyKey: String? = nil, keyMadeByGateway: Bool = false, keyIsFresh: Bool = false,
                trace: TraceParent? = nil) {
        self.route = route
        self.tenant = tenant
        self.authorization = authorization
        self.body = body
        self.idempotencyKey = idempotencyKey
        self.keyMadeByGateway = keyMadeByGateway
        self.keyIsFresh = keyMadeByGateway && keyIsFresh
        self.trace = trace
    }

    /// An item whose body is a byte array (tests, tools).
    public init(_ route: RESTRoute, tenant: String? = nil, authorization: String? = nil, body: [UInt8],
                idempotencyKey: String? = nil, keyMadeByGateway: Bool = false, keyIsFresh: Bool = false,
                trace: TraceParent? = nil) {
        self.init(route, tenant: tenant, authorization: authorization, body: ByteBuffer(bytes: body),
                  idempotencyKey: idempotencyKey, keyMadeByGateway: keyMadeByGateway, keyIsFresh: keyIsFresh, trace: trace)
    }
}

/// One operation of a batch request as the core reads it: the route, or why the item names
/// none (its own failure, the error the equivalent REST request gets), and the rest of the
/// item.
public struct ReceivedBatchItem: Sendable, Equatable {
    public var route: Result<RESTRoute, ContextError>
    public var tenant: String?
    public var authorization: String?
    /// A slice of the buffer the batch was received into.
    public var body: ByteBuffer
    public var idempotencyKey: String?
    public var keyMadeByGateway: Bool
    public var keyIsFresh: Bool
    public var trace: TraceParent?

    public init(route: Result<RESTRoute, ContextError>, tenant: String? = nil, authorization: String? = nil,
                body: ByteBuffer = ByteBuffer(), idempotencyKey: String? = nil, keyMadeByGateway: Bool = false,
                keyIsFresh: Bool = false, trace: TraceParent? = nil) {
        self.route = route
        self.tenant = tenant
        self.authorization = authorization
        self.body = body
        self.idempotencyKey = idempotencyKey
        self.keyMadeByGateway = keyMadeByGateway
        self.keyIsFresh = keyMadeByGateway && keyIsFresh
        self.trace = trace
    }

    /// The item as sent, when its route is valid.
    public var item: BatchItem? {
        guard case .success(let route) = route else { return nil }
        return BatchItem(route, tenant: tenant, authorization: authorization, body: body, idempotencyKey: idempotencyKey,
                         keyMadeByGateway: keyMadeByGateway, keyIsFresh: keyIsFresh, trace: trace)
    }
}

/// The answer to one item: exactly what the single call would have answered.
public struct BatchResult: Sendable, Equatable {
    public var status: Int
    public var location: String?
    /// Seconds to wait before coming back (429/503); nil (sent as 0) is none.
    public var retryAfter: Int?
    /// JSON (a representation, `{"task_id":N}`, or the error shape of §5), or empty; after
    /// `decodeResponse`, a slice of the answer's buffer.
    public var body: ByteBuffer
    /// The answer stored under the item's idempotency key, given again: nothing was written.
    public var replayed: Bool

    public init(status: Int, location: String? = nil, retryAfter: Int? = nil, body: ByteBuffer = ByteBuffer(), replayed: Bool = false) {
        self.status = status
        self.location = location
        self.retryAfter = retryAfter
        self.body = body
        self.replayed = replayed
    }

    /// A result whose body is a byte array (tests, tools).
    public init(status: Int, location: String? = nil, retryAfter: Int? = nil, body: [UInt8], replayed: Bool = false) {
        self.init(status: status, location: location, retryAfter: retryAfter, body: ByteBuffer(bytes: body), replayed: replayed)
    }
}

/// Why bytes are not a batch. Every one of these refuses the whole batch and changes nothing:
/// 400 `ValidationException`, except `tooManyItems` (413 `PayloadTooLargeException`).
public enum BatchCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The first four bytes are not the magic of the direction (of this version).
    case badMagic
    /// A count of 0: a batch carries at least one item.
    case emptyBatch
    /// A length or a count runs past the end of the bytes.
    case truncated(offset: Int, needed: String)
    /// Reserved flag bits set: what follows cannot be framed.
    case unknownFlags(UInt8, item: Int, offset: Int)
    /// Bytes left after the last item.
    case trailingBytes(offset: Int, count: Int)
    /// The header announces more items than the receiver takes.
    case tooManyItems(count: Int, limit: Int)
    /// Encoding only: a value does not fit its length field.
    case fieldTooLong(field: String, length: Int)

    public var description: String {
        switch self {
        case .badMagic: "malformed batch: it does not start with the magic (CSB3 for requests, CSR3 for responses)"
        case .emptyBatch: "malformed batch: the item count is 0"
        case .truncated(let offset, let needed): "malformed batch: truncated at byte \(offset), reading the \(needed)"
        case .unknownFlags(let byte, let item, let offset):
            "malformed batch: item \(item) has reserved flag bits set (\(byte)) at byte \(offset)"
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

extension RESTOperation {
    /// The operation's name as the gRPC API spells it (`RESTRoute.operationName`).
    public var name: String { RESTRoute.operationNames[Int(rawValue) - 1] }
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
