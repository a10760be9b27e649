import ContextModel

/// What to send to the core for one RPC.
struct UpstreamCall: Sendable, Equatable {
    var route: RESTRoute
    /// The canonical JSON body (DESIGN.md §4); empty for GET and DELETE.
    var body: [UInt8]
}

/// protobuf ⇄ the REST calls of the contract (CONTEXT-SERVICES.md §7), both directions.
///
/// Requests are unpacked with protobuf-c and validated by the model: every field becomes the
/// member a REST body would carry and goes through `Event(members:body:kind:phase:)`, so a
/// binary request obeys exactly the rules (and gets exactly the messages) of a REST body, and
/// the body sent upstream is `event.canonicalJSON`, the bytes a REST client would send.
enum Codec {
    /// Unpacks the protobuf request `message` of `method` and returns the REST call to make.
    /// Throws INVALID_ARGUMENT for values the contract refuses and INTERNAL for bytes that are
    /// not a message of the method's request type (see `GRPCStatus.unparsable`).
    /// `limits` are the core's body limits (`--max-body`, `--max-depth`), applied to the
    /// extensions here so that a binary request is refused exactly where a REST one would be.
    static func decodeRequest(
        _ method: RPCMethod, _ message: UnsafeRawBufferPointer, limits: JSONLimits = .defaults
    ) throws(GRPCStatus) -> UpstreamCall {
        switch method {
        case .startService: try decodeStartService(message, limits: limits)
        case .completeService: try decodeCompleteService(message, limits: limits)
        case .queryService: try decodeQueryService(message, limits: limits)
        case .deleteService: try decodeDeleteService(message, limits: limits)
        case .startState: try decodeStartState(message, limits: limits)
        case .completeState: try decodeCompleteState(message, limits: limits)
        case .queryState: try decodeQueryState(message, limits: limits)
        case .startTask: try decodeStartTask(message, limits: limits)
        case .completeTask: try decodeCompleteTask(message, limits: limits)
        case .queryTask: try decodeQueryTask(message, limits: limits)
        case .queryTasks: try decodeQueryTasks(message, limits: limits)
        case .healthCheck, .healthWatch: throw .servedLocally(method)
        }
    }

    /// Builds the protobuf response of `method` from the core's successful answer (a 2xx):
    /// its `Location` header and its JSON body. Throws INTERNAL when the answer does not fit
    /// the contract.
    static func encodeResponse(_ method: RPCMethod, location: String?, body: [UInt8]) throws(GRPCStatus) -> [UInt8] {
        switch method {
        case .startService: try encodeCreated(.service, location: location, body: body)
        case .startState: try encodeCreated(.state, location: location, body: body)
        case .startTask: try encodeCreated(.task, location: location, body: body)
        case .completeService, .completeState, .completeTask, .deleteService:
            // Empty messages: an all-default proto3 message is 0 bytes.
            []
        case .queryService: try encodeQuery(body, as: .service)
        case .queryState: try encodeQuery(body, as: .state)
        case .queryTask: try encodeQuery(body, as: .task)
        case .queryTasks: try encodeQueryTasks(body)
        case .healthCheck, .healthWatch: throw .servedLocally(method)
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
