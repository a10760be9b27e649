import CProtobufC
import ContextModel

// The edge where protobuf-c's C structs meet Swift (STYLE.md: C interop kept at the edge).
// Nothing outside Sources/Gateway/Codec sees an unpacked message or a `char *`.

/// Unpacks one message with protobuf-c, hands it to `body`, and frees it whatever happens.
///
/// `unpack` and `free` are the generated per-message functions (`*__unpack`,
/// `*__free_unpacked`): taking a descriptor's address from Swift is unsafe in release builds
/// (STACK-NOTES.md), the generated functions pass the real one. A nil allocator is malloc.
@inline(__always)
func withUnpacked<Message, Result>(
    _ bytes: UnsafeRawBufferPointer,
    _ method: RPCMethod,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?,
    free: (UnsafeMutablePointer<Message>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void,
    _ body: (UnsafePointer<Message>) throws(GRPCStatus) -> Result
) throws(GRPCStatus) -> Result {
    let message: UnsafeMutablePointer<Message>?
    if let base = bytes.baseAddress {
        message = unpack(nil, bytes.count, base.assumingMemoryBound(to: UInt8.self))
    } else {
        // An all-default proto3 message is 0 bytes and its buffer may have no address at all.
        var none: UInt8 = 0
        message = withUnsafePointer(to: &none) { unpack(nil, 0, $0) }
    }
    guard let message else { throw .unparsable(method) }
    defer { free(message, nil) }
    return try body(UnsafePointer(message))
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
