import ContextModel
import NIOCore

/// What to send to the core for one RPC.
struct UpstreamCall: Sendable, Equatable {
    var route: RESTRoute
    /// The canonical JSON body (DESIGN.md §4), written straight into this buffer; empty for
    /// GET and DELETE.
    var body: ByteBuffer
}

/// protobuf ⇄ the REST calls of the contract (CONTEXT-SERVICES.md §7), both directions.
///
/// Requests are unpacked with protobuf-c and validated by the model: every field becomes the
/// member a REST body would carry and goes through `Event(members:body:kind:phase:)`, so a
/// binary request obeys exactly the rules (and gets exactly the messages) of a REST body, and
/// the body sent upstream is `event.canonicalJSON`, the bytes a REST client would send.
enum Codec {
    // `decodeRequest`: Codec+Requests.swift, one table-driven decoder for every RPC.

    /// Builds the protobuf response of `method` from the core's successful answer (a 2xx):
    /// its `Location` header and its JSON body. Throws INTERNAL when the answer does not fit
    /// the contract. Field numbers come from the generated table (`ResponseFields`). The
    /// message is framed: written once behind gRPC's 5-byte length prefix
    /// (`ProtobufWriter.framed()`), the buffer the response body goes out in.
    static func encodeResponse(_ method: RPCMethod, location: String?, body: ByteBuffer) throws(GRPCStatus) -> ByteBuffer {
        guard let contract = RPCContract.of(method) else { throw .servedLocally(method) }
        switch contract {
        case .start(let kind): return try encodeCreated(kind, ResponseFields.created(method), location: location, body: body)
        case .end, .delete:
            // Empty messages: an all-default proto3 message is 0 bytes (the prefix alone).
            var writer = ProtobufWriter(capacity: 0)
            return writer.framed()
        case .query(let kind): return try encodeQuery(body, as: kind, field: ResponseFields.resource(method))
        case .queryTasks: return try encodeQueryTasks(body, field: ResponseFields.resource(method))
        }
    }
}

extension GRPCStatus {
    /// grpc.health.v1 is answered by the gateway (`Codec.decodeHealthCheckRequest`), never
    /// translated for the core.
    static func servedLocally(_ method: RPCMethod) -> GRPCStatus {
        GRPCStatus(code: .internalError, message: "\(method.path) is answered by the gateway itself and has no REST call")
    }

    /// The core answered 2xx with something the contract does not allow.
    static func badUpstreamAnswer(_ what: String) -> GRPCStatus {
        GRPCStatus(code: .internalError, message: "the core's answer does not fit the contract: \(what)")
    }
}
