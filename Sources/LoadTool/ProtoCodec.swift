internal import CProtobufC
internal import ContextProto
import NIOCore

// The edge where the load tool meets protobuf-c (STYLE.md: C interop kept at the edge): every
// protobuf-c call of the load tool is in this file. One table-driven encoder and one decoder for
// every RPC: the generated RPC table (gen-proto.sh: Sources/ContextProto/rpc_table.c) gives each
// RPC's request and response descriptors, and the descriptors' field maps say where each field
// sits; what the load tool puts in a field is chosen by the field's name (`LoadValue`).

/// One step's event content as protobuf-c sub-messages and C strings, built once and only read
/// afterwards: `*__pack` reads them and never writes, so every event loop may pack from the same
/// table at once, hence `@unchecked Sendable`. Freed with the table.
final class ProtoContent: @unchecked Sendable {
    let typeName: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?
    let event: UnsafeMutablePointer<Genesys__Cs__V1__EventFields>?
    let disposition: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?
    let customerID: UnsafeMutablePointer<CChar>?
    let dispositionDesc: UnsafeMutablePointer<CChar>?
    let extensionsJSON: UnsafeMutablePointer<CChar>?
    let estDuration: Int32?
    private var strings: [UnsafeMutablePointer<CChar>] = []
    private var attributes: [UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>] = []
    private var mediaType: UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>?

    init(_ content: EventContent) {
        var strings: [UnsafeMutablePointer<CChar>] = []
        var attributes: [UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>] = []
        func cString(_ s: String?) -> UnsafeMutablePointer<CChar>? {
            guard let s else { return nil }
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: s.utf8.count + 1)
            for (i, byte) in s.utf8.enumerated() { p[i] = CChar(bitPattern: byte) }
            p[s.utf8.count] = 0
            strings.append(p)
            return p
        }
        func attribute(_ name: String?) -> UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>? {
            guard let name else { return nil }
            let a = UnsafeMutablePointer<Genesys__Cs__V1__BusinessAttribute>.allocate(capacity: 1)
            a.initialize(to: Genesys__Cs__V1__BusinessAttribute())
            genesys__cs__v1__business_attribute__init(a)
            a.pointee.value_case = GENESYS__CS__V1__BUSINESS_ATTRIBUTE__VALUE_NAME
            a.pointee.name = cString(name)
            attributes.append(a)
            return a
        }
        typeName = attribute(content.typeName)
        disposition = attribute(content.disposition)
        customerID = cString(content.customerID)
        dispositionDesc = cString(content.dispositionDesc)
        extensionsJSON = cString(content.extensionsJSON)
        estDuration = content.estDuration
        if content.interactionID != nil || content.mediaType != nil {
            let e = UnsafeMutablePointer<Genesys__Cs__V1__EventFields>.allocate(capacity: 1)
            e.initialize(to: Genesys__Cs__V1__EventFields())
            genesys__cs__v1__event_fields__init(e)
            if let id = cString(content.interactionID) {
                e.pointee._interaction_id_case = GENESYS__CS__V1__EVENT_FIELDS___INTERACTION_ID_INTERACTION_ID
                e.pointee.interaction_id = id
            }
            e.pointee.media_type = attribute(content.mediaType)
            event = e
        } else {
            event = nil
        }
        self.strings = strings
        self.attributes = attributes
    }

    deinit {
        for s in strings { s.deallocate() }
        for a in attributes { a.deallocate() }
        event?.deallocate()
    }
}

/// What the load tool puts in a request field, chosen by the field's name in the .proto.
enum LoadValue: Sendable {
    case serviceID, stateID, taskID, typeName, event, disposition, customerID, estDuration, dispositionDesc
    case extensionsJSON
    /// Every bool of a request (QueryService's include flags): everything the journey made, what
    /// an agent desktop shows.
    case flagOn

    init?(field name: String, type: ProtobufCType) {
        switch name {
        case "service_id": self = .serviceID
        case "state_id": self = .stateID
        case "task_id": self = .taskID
        case "service_type", "state_type", "task_type": self = .typeName
        case "event": self = .event
        case "disposition": self = .disposition
        case "customer_id": self = .customerID
        case "est_duration": self = .estDuration
        case "disposition_desc": self = .dispositionDesc
        case "extensions_json": self = .extensionsJSON
        default:
            guard type == PROTOBUF_C_TYPE_BOOL else { return nil }  // left at its default
            self = .flagOn
        }
    }
}

/// One RPC's messages, worked out once from the generated table: the descriptors (static C
/// data, only ever read: hence `@unchecked Sendable`) and the fields the load tool sets.
struct RPCCodecPlan: @unchecked Sendable {
    let request: UnsafePointer<ProtobufCMessageDescriptor>
    let response: UnsafePointer<ProtobufCMessageDescriptor>
    let steps: [(field: UnsafePointer<ProtobufCFieldDescriptor>, value: LoadValue)]
    /// The response's `<kind>_id` (starts), else its one message field (queries), else nothing.
    let answerID: UnsafePointer<ProtobufCFieldDescriptor>?
    let answerMessage: UnsafePointer<ProtobufCFieldDescriptor>?

    init(_ method: LoadMethod) {
        guard let row = (0..<cs_rpc_count()).first(where: { String(cString: cs_rpc_path($0)) == method.grpcPath }),
              let request = cs_rpc_request_descriptor(row), let response = cs_rpc_response_descriptor(row)
        else { preconditionFailure("\(method.grpcPath) is not in the generated RPC table") }
        self.request = request
        self.response = response
        var steps: [(field: UnsafePointer<ProtobufCFieldDescriptor>, value: LoadValue)] = []
        for i in 0..<Int(request.pointee.n_fields) {
            let field = request.pointee.fields.advanced(by: i)
            if let value = LoadValue(field: String(cString: field.pointee.name), type: field.pointee.type) {
                steps.append((field, value))
            }
        }
        self.steps = steps
        var answerID: UnsafePointer<ProtobufCFieldDescriptor>?
        var answerMessage: UnsafePointer<ProtobufCFieldDescriptor>?
        for i in 0..<Int(response.pointee.n_fields) {
            let field = response.pointee.fields.advanced(by: i)
            if String(cString: field.pointee.name).hasSuffix("_id"), field.pointee.type == PROTOBUF_C_TYPE_INT64 || field.pointee.type == PROTOBUF_C_TYPE_INT32 {
                answerID = answerID ?? field
            } else if field.pointee.type == PROTOBUF_C_TYPE_MESSAGE {
                answerMessage = answerMessage ?? field
            }
        }
        self.answerID = answerID
        self.answerMessage = answerMessage
    }

    static let byMethod: [RPCCodecPlan] = LoadMethod.allCases.map(RPCCodecPlan.init)
}

enum ProtoCodec {
    /// Appends the gRPC length-prefixed message (PROTOCOL-HTTP2.md: flag 0, 4-byte big-endian
    /// length) of `call` to `buffer`.
    static func encode(_ call: LoadCall, _ content: ProtoContent, into buffer: inout ByteBuffer) {
        let plan = RPCCodecPlan.byMethod[call.method.rawValue]
        let size = Int(plan.request.pointee.sizeof_message)
        // The C struct of the request, on the stack: it only points at `content`'s storage.
        withUnsafeTemporaryAllocation(byteCount: size, alignment: 16) { storage in
            guard let m = storage.baseAddress else { return }
            protobuf_c_message_init(plan.request, m)
            for (field, value) in plan.steps {
                switch value {
                case .serviceID: setInteger(m, field, call.serviceID)
                case .stateID: setInteger(m, field, Int64(call.stateID))
                case .taskID: setInteger(m, field, Int64(call.taskID))
                case .flagOn: setInteger(m, field, 1)
                case .estDuration: if let d = content.estDuration { setInteger(m, field, Int64(d)) }
                case .typeName: setPointer(m, field, content.typeName)
                case .event: setPointer(m, field, content.event)
                case .disposition: setPointer(m, field, content.disposition)
                case .customerID: setPointer(m, field, content.customerID)
                case .dispositionDesc: setPointer(m, field, content.dispositionDesc)
                case .extensionsJSON: setPointer(m, field, content.extensionsJSON)
                }
            }
            let message = m.assumingMemoryBound(to: ProtobufCMessage.self)
            write(&buffer, protobuf_c_message_get_packed_size(message)) { protobuf_c_message_pack(message, $0) }
        }
    }

    /// An integer or bool field, and its presence when it has one.
    @inline(__always)
    private static func setInteger(_ m: UnsafeMutableRawPointer, _ field: UnsafePointer<ProtobufCFieldDescriptor>, _ value: Int64) {
        let offset = Int(field.pointee.offset)
        switch field.pointee.type {
        case PROTOBUF_C_TYPE_INT64, PROTOBUF_C_TYPE_SINT64, PROTOBUF_C_TYPE_SFIXED64:
            m.storeBytes(of: value, toByteOffset: offset, as: Int64.self)
        default:  // int32 and friends, bool (protobuf_c_boolean), enums: int-sized
            m.storeBytes(of: Int32(truncatingIfNeeded: value), toByteOffset: offset, as: Int32.self)
        }
        markSet(m, field)
    }

    /// A string or message field (nil: left unset), and its presence when it has one.
    @inline(__always)
    private static func setPointer<T>(_ m: UnsafeMutableRawPointer, _ field: UnsafePointer<ProtobufCFieldDescriptor>, _ value: UnsafeMutablePointer<T>?) {
        guard let value else { return }
        m.storeBytes(of: UnsafeMutableRawPointer(value), toByteOffset: Int(field.pointee.offset), as: UnsafeMutableRawPointer.self)
        markSet(m, field)
    }

    /// A proto3 `optional` field (protoc-c: a one-field oneof, gen-proto.sh) or a oneof member:
    /// its case is its number.
    @inline(__always)
    private static func markSet(_ m: UnsafeMutableRawPointer, _ field: UnsafePointer<ProtobufCFieldDescriptor>) {
        guard field.pointee.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0 else { return }
        m.storeBytes(of: field.pointee.id, toByteOffset: Int(field.pointee.quantifier_offset), as: UInt32.self)
    }

    /// The prefix, then `size` bytes packed straight into the buffer's storage.
    @inline(__always)
    private static func write(_ buffer: inout ByteBuffer, _ size: Int, _ pack: (UnsafeMutablePointer<UInt8>) -> Int) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(truncatingIfNeeded: size), endianness: .big)
        guard size > 0 else { return }  // an all-default message is 0 bytes (STACK-NOTES.md)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            guard let base = raw.baseAddress else { return 0 }
            return pack(base.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Reads the answer message of `method`. The id it carries for a start (service, state or
    /// task id), 0 for the others; nil when the bytes are not a valid message of its type (or a
    /// query's answer without its resource).
    static func decodeAnswer(_ method: LoadMethod, _ bytes: UnsafeRawBufferPointer) -> Int64? {
        let plan = RPCCodecPlan.byMethod[method.rawValue]
        let message: UnsafeMutablePointer<ProtobufCMessage>?
        if let base = bytes.baseAddress, bytes.count > 0 {
            message = protobuf_c_message_unpack(plan.response, nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
        } else {
            // An all-default answer is 0 bytes and may come without an address.
            var none: UInt8 = 0
            message = withUnsafePointer(to: &none) { protobuf_c_message_unpack(plan.response, nil, 0, $0) }
        }
        guard let message else { return nil }
        defer { protobuf_c_message_free_unpacked(message, nil) }
        let raw = UnsafeRawPointer(message)
        if let id = plan.answerID {
            return id.pointee.type == PROTOBUF_C_TYPE_INT64
                ? raw.load(fromByteOffset: Int(id.pointee.offset), as: Int64.self)
                : Int64(raw.load(fromByteOffset: Int(id.pointee.offset), as: Int32.self))
        }
        if let resource = plan.answerMessage {
            return raw.load(fromByteOffset: Int(resource.pointee.offset), as: UnsafeRawPointer?.self) == nil ? nil : 0
        }
        return 0
    }
}
