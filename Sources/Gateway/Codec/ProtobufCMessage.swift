internal import CProtobufC
import ContextModel
internal import ContextProto

// The edge where protobuf-c's C structs meet Swift (STYLE.md: C interop kept at the edge): every
// protobuf-c call of the gateway is in this file. Nothing outside Sources/Gateway/Codec sees an
// unpacked message or a `char *`.
//
// Messages are unpacked with the generic `protobuf_c_message_unpack` and the descriptor of the
// RPC's request, which the generated C table hands out (`cs_rpc_request_descriptor`: taking a
// descriptor's address from Swift is unsafe in release builds, STACK-NOTES.md). Fields are read
// through `ProtoMessageRef`: the generated field map (RPCDescriptors+Generated.swift) names
// them, the protobuf-c descriptor says where they sit in the C struct.

/// Where one field sits in protobuf-c's C struct and how it says "set": worked out once per
/// field from the generated field map and the protobuf-c descriptor (`MessageLayout.slot`),
/// plain values only, so that the decoder's per-field work is a few loads.
struct FieldSlot: Sendable {
    enum Presence: UInt8, Sendable {
        /// A plain proto3 scalar: set when not its default (0, false, "").
        case implicit
        /// proto3 `optional` (protoc-c: the one-field oneof `_name`) or a oneof member: set
        /// when the case at `quantifierOffset` is `number`.
        case oneofCase
        /// A message: set when its pointer is.
        case pointer
        /// A repeated field: `quantifierOffset` holds the count.
        case repeated
    }

    enum Storage: UInt8, Sendable {
        case int32, int64, uint32, uint64, string, message
    }

    let offset: Int
    let quantifierOffset: Int
    let number: UInt32
    let presence: Presence
    let storage: Storage
}

/// A message type's protobuf-c descriptor, read once to lay out its fields.
struct MessageLayout: @unchecked Sendable {  // static C data, only read
    let descriptor: UnsafePointer<ProtobufCMessageDescriptor>

    /// The request message of `method` (the generated C table's descriptor).
    init(request method: RPCMethod) {
        guard let descriptor = cs_rpc_request_descriptor(method.rawValue) else {
            preconditionFailure("no protobuf-c descriptor for \(method.path): regenerate the RPC table")
        }
        self.descriptor = descriptor
    }

    private init(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) {
        self.descriptor = descriptor
    }

    private func c(_ field: ProtoField) -> UnsafePointer<ProtobufCFieldDescriptor> {
        precondition(field.index < Int(descriptor.pointee.n_fields) && Int(descriptor.pointee.fields[field.index].id) == field.number,
                     "\(field.name): the generated table and protobuf-c's descriptor disagree; regenerate")
        return descriptor.pointee.fields.advanced(by: field.index)
    }

    func slot(_ field: ProtoField) -> FieldSlot {
        let cField = c(field)
        let presence: FieldSlot.Presence
        switch field.presence {
        case .repeated: presence = .repeated
        case .oneof: presence = .oneofCase
        case .explicit: presence = field.type == .message ? .pointer : .oneofCase
        case .implicit: presence = field.type == .message ? .pointer : .implicit
        }
        let storage: FieldSlot.Storage = switch field.type {
        case .int64, .sint64, .sfixed64: .int64
        case .uint64, .fixed64: .uint64
        case .uint32, .fixed32: .uint32
        case .string: .string
        case .message: .message
        // int32, sint32, sfixed32, enums (C enums forced to int size), protobuf_c_boolean (int).
        default: .int32
        }
        return FieldSlot(offset: Int(cField.pointee.offset), quantifierOffset: Int(cField.pointee.quantifier_offset),
                         number: UInt32(field.number), presence: presence, storage: storage)
    }

    /// The layout of a message field's type.
    func layout(of field: ProtoField) -> MessageLayout {
        guard let sub = c(field).pointee.descriptor else { preconditionFailure("\(field.name) is not a message") }
        return MessageLayout(sub.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
    }
}

/// One unpacked message (or sub-message). Valid inside `withUnpacked` only.
struct ProtoMessageRef {
    let base: UnsafeRawPointer

    /// Whether the field is set (see `FieldSlot.Presence`).
    @inline(__always)
    func isSet(_ slot: FieldSlot) -> Bool {
        switch slot.presence {
        case .oneofCase: return base.load(fromByteOffset: slot.quantifierOffset, as: UInt32.self) == slot.number
        case .pointer: return base.load(fromByteOffset: slot.offset, as: UnsafeRawPointer?.self) != nil
        case .repeated: return repeatedCount(slot) > 0
        case .implicit:
            if slot.storage == .string { return cString(slot).map { $0.pointee != 0 } ?? false }
            return int64(slot) != 0
        }
    }

    /// An integer, enum or bool field, widened.
    @inline(__always)
    func int64(_ slot: FieldSlot) -> Int64 {
        switch slot.storage {
        case .int64: return base.load(fromByteOffset: slot.offset, as: Int64.self)
        case .uint64: return Int64(bitPattern: base.load(fromByteOffset: slot.offset, as: UInt64.self))
        case .uint32: return Int64(base.load(fromByteOffset: slot.offset, as: UInt32.self))
        default: return Int64(base.load(fromByteOffset: slot.offset, as: Int32.self))
        }
    }

    /// A `string` field's NUL-terminated bytes (nil only for an unset oneof member).
    @inline(__always)
    func cString(_ slot: FieldSlot) -> UnsafeMutablePointer<CChar>? {
        base.load(fromByteOffset: slot.offset, as: UnsafeMutablePointer<CChar>?.self)
    }

    /// A message field, nil when unset.
    @inline(__always)
    func message(_ slot: FieldSlot) -> ProtoMessageRef? {
        base.load(fromByteOffset: slot.offset, as: UnsafeRawPointer?.self).map(ProtoMessageRef.init(base:))
    }

    /// The message as its generated C struct (for code that walks a well-known type itself).
    func pointer<Message>(as: Message.Type) -> UnsafeMutablePointer<Message> {
        UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Message.self))
    }

    /// `n_<name>` of a repeated field.
    @inline(__always)
    func repeatedCount(_ slot: FieldSlot) -> Int {
        base.load(fromByteOffset: slot.quantifierOffset, as: Int.self)
    }

    /// Element `k` of a repeated `string` field.
    @inline(__always)
    func cString(_ slot: FieldSlot, at k: Int) -> UnsafeMutablePointer<CChar>? {
        guard let array = base.load(fromByteOffset: slot.offset, as: UnsafePointer<UnsafeMutablePointer<CChar>?>?.self) else {
            return nil
        }
        return array[k]
    }
}

/// Unpacks the request message of `method` with protobuf-c, hands it to `body`, and frees it
/// whatever happens. A nil allocator is malloc.
@inline(__always)
func withUnpacked<Result>(
    _ bytes: UnsafeRawBufferPointer,
    _ method: RPCMethod,
    _ body: (ProtoMessageRef) throws(GRPCStatus) -> Result
) throws(GRPCStatus) -> Result {
    guard let descriptor = cs_rpc_request_descriptor(method.rawValue) else {
        preconditionFailure("no protobuf-c descriptor for \(method.path): regenerate the RPC table")
    }
    let message: UnsafeMutablePointer<ProtobufCMessage>?
    if let base = bytes.baseAddress {
        message = protobuf_c_message_unpack(descriptor, nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
    } else {
        // An all-default proto3 message is 0 bytes and its buffer may have no address at all.
        var none: UInt8 = 0
        message = withUnsafePointer(to: &none) { protobuf_c_message_unpack(descriptor, nil, 0, $0) }
    }
    guard let message else { throw .unparsable(method) }
    defer { protobuf_c_message_free_unpacked(message, nil) }
    return try body(ProtoMessageRef(base: UnsafeRawPointer(message)))
}

extension GRPCStatus {
    /// A request that is not a valid message of its type. INTERNAL, as the reference servers
    /// answer: grpc-go `server.go` processUnaryRPC returns codes.Internal "grpc: error
    /// unmarshalling request: …" (also for a string that is not UTF-8), grpc-java
    /// `ProtoLiteUtils` throws Status.INTERNAL "Invalid protobuf byte sequence". Not
    /// INVALID_ARGUMENT: that one means "the server understood the request and refuses its
    /// values", and clients and proxies count the two differently.
    static func unparsable(_ method: RPCMethod, _ detail: String = "invalid protobuf wire format") -> GRPCStatus {
        GRPCStatus(code: .internalError, message: "grpc: error unmarshalling request: \(method.requestName): \(detail)")
    }

    /// A request value the contract refuses (400, `ValidationException`).
    static func invalid(_ message: String) -> GRPCStatus {
        GRPCStatus(ContextError.validation(message))
    }
}

/// A proto3 `string` field: valid UTF-8 or the message is unparsable (proto3 requires UTF-8 and
/// grpc-go refuses such a request; protobuf-c 1.4 does not check).
///
/// protobuf-c keeps strings NUL-terminated without their length, so a string with an embedded
/// U+0000 arrives cut at it: a limitation of the runtime, documented here rather than hidden.
@inline(__always)
func protoString(_ pointer: UnsafePointer<CChar>?, _ field: String, _ method: RPCMethod) throws(GRPCStatus) -> String {
    guard let pointer else { return "" }
    guard let string = String(validatingCString: pointer) else {
        throw .unparsable(method, "string field \(field) contains invalid UTF-8")
    }
    return string
}
