import ContextModel
import ContextProto

extension Codec {
    /// The `service` of a grpc.health.v1.HealthCheckRequest.
    static func decodeHealthCheckRequest(_ bytes: UnsafeRawBufferPointer) throws(GRPCStatus) -> String {
        // An all-default message is 0 bytes: unpack wants a valid pointer even then.
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        guard let message = grpc__health__v1__health_check_request__unpack(nil, bytes.count, base) else {
            // grpc-go: a request that does not deserialize is INTERNAL.
            throw GRPCStatus(code: .internalError, message: "malformed HealthCheckRequest", exception: nil)
        }
        defer { grpc__health__v1__health_check_request__free_unpacked(message, nil) }
        return String(cString: message.pointee.service)
    }
}
