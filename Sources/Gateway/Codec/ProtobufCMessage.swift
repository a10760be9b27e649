import CProtobufC
import ContextModel
import ContextProto

// The edge where protobuf-c's C structs meet Swift (STYLE.md: C interop kept at the edge): every
// protobuf-c call of the gateway is in this file. Nothing outside Sources/Gateway/Codec sees an
// unpacked message or a `char *`.
//
// Messages are unpacked with the generic `protobuf_c_message_unpack` and the descriptor of the
// RPC's request, which the generated C table hands out (`cs_rpc_request_descriptor`: taking a
// descriptor's address from Swift is unsafe in release builds, STACK-NOTES.md). Fields are read
// through `ProtoMessageRef`: the generated field map (RPCDescriptors+Generated.swift) names
// them, the protobuf-c descriptor says where they sit in the C struct.

/// One unpacked message (or sub-message) and its descriptor. Valid inside `withUnpacked` only.
struct ProtoMessageRef {
    let base: UnsafeRawPointer
    let descriptor: UnsafePointer<ProtobufCMessageDescriptor>

    @inline(__always)
    private func c(_ field: ProtoField) -> UnsafePointer<ProtobufCFieldDescriptor> {
        descriptor.pointee.fields.advanced(by: field.index)
    }

    /// Explicit presence (proto3 `optional`, a oneof member, a message); an implicit scalar is
    /// set when it is not its default (0, false, "").
    @inline(__always)
    func isSet(_ field: ProtoField) -> Bool {
        let cField = c(field)
        switch field.presence {
        case .explicit where field.type == .message:
            return base.load(fromByteOffset: Int(cField.pointee.offset), as: UnsafeRawPointer?.self) != nil
        case .explicit, .oneof:
            // protoc-c's `_<name>_case` / `<oneof>_case`: the number of the member that is set.
            return base.load(fromByteOffset: Int(cField.pointee.quantifier_offset), as: UInt32.self) == UInt32(field.number)
        case .repeated:
            return repeatedCount(field) > 0
        case .implicit:
            switch field.type {
            case .string: return cString(field).map { $0.pointee != 0 } ?? false
            case .message: return base.load(fromByteOffset: Int(cField.pointee.offset), as: UnsafeRawPointer?.self) != nil
            default: return int64(field) != 0
            }
        }
    }

    /// An integer, enum or bool field, widened.
    @inline(__always)
    func int64(_ field: ProtoField) -> Int64 {
        let offset = Int(c(field).pointee.offset)
        switch field.type {
        case .int64, .sint64, .sfixed64: return base.load(fromByteOffset: offset, as: Int64.self)
        case .uint64, .fixed64: return Int64(bitPattern: base.load(fromByteOffset: offset, as: UInt64.self))
        case .uint32, .fixed32: return Int64(base.load(fromByteOffset: offset, as: UInt32.self))
        // int32, sint32, sfixed32, enums (C enums forced to int size), protobuf_c_boolean (int).
        default: return Int64(base.load(fromByteOffset: offset, as: Int32.self))
        }
    }

    /// A `string` field's NUL-terminated bytes (nil only for an unset oneof member).
    @inline(__always)
    func cString(_ field: ProtoField) -> UnsafeMutablePointer<CChar>? {
        base.load(fromByteOffset: Int(c(field).pointee.offset), as: UnsafeMutablePointer<CChar>?.self)
    }

    /// A message field, nil when unset.
    @inline(__always)
    func message(_ field: ProtoField) -> ProtoMessageRef? {
        let cField = c(field)
        guard let pointer = base.load(fromByteOffset: Int(cField.pointee.offset), as: UnsafeRawPointer?.self),
              let descriptor = cField.pointee.descriptor
        else { return nil }
        return ProtoMessageRef(base: pointer, descriptor: descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self))
    }

    /// The message as its generated C struct (for code that walks a well-known type itself).
    func pointer<Message>(as: Message.Type) -> UnsafeMutablePointer<Message> {
        UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Message.self))
    }

    /// `n_<name>` of a repeated field.
    @inline(__always)
    func repeatedCount(_ field: ProtoField) -> Int {
        base.load(fromByteOffset: Int(c(field).pointee.quantifier_offset), as: Int.self)
    }

    /// Element `k` of a repeated `string` field.
    @inline(__always)
    func cString(_ field: ProtoField, at k: Int) -> UnsafeMutablePointer<CChar>? {
        guard let array = base.load(fromByteOffset: Int(c(field).pointee.offset), as: UnsafePointer<UnsafeMutablePointer<CChar>?>?.self) else {
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
    return try body(ProtoMessageRef(base: UnsafeRawPointer(message), descriptor: descriptor))
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
