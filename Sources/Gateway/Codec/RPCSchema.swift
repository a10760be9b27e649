// The types of the generated RPC table (RPCDescriptors+Generated.swift, written by
// gateway/scripts/gen-rpc-table.py from proto/) and the lookups `RPCMethod` answers from it.
// Per-RPC knowledge lives in the .proto (and, for what the proto cannot say, the contract table
// of RPCContract.swift), nowhere else.

/// Namespace of the generated field maps (`ProtoSchema.fields`, `ProtoSchema.enums`).
enum ProtoSchema {}

/// A field's wire type as the .proto spells it.
enum ProtoFieldType: Sendable, Equatable {
    case int32, int64, uint32, uint64, sint32, sint64, fixed32, fixed64, sfixed32, sfixed64
    case bool, string, bytes, double, float
    case enumeration, message
}

/// How a field says "set" (proto3): `implicit`, a plain scalar, is unset at its default;
/// `explicit`, a proto3 `optional` scalar (protoc-c: the one-field oneof `_name`, see
/// gen-proto.sh) or a message, has presence of its own; `oneof` names a real oneof.
enum ProtoPresence: Sendable, Equatable {
    case implicit, explicit, repeated
    case oneof(String)
}

/// One field of a message: what the decoder, encoder and response writer need.
struct ProtoField: Sendable, Equatable {
    let name: String
    let number: Int
    let type: ProtoFieldType
    /// The full name of a message or enum type; nil for scalars.
    let typeName: String?
    let presence: ProtoPresence
    /// The field's row in its protobuf-c descriptor's `fields` (protoc-c sorts them by number).
    let index: Int
}

/// One RPC: where it is served, what it takes and answers.
struct RPCDescriptor: Sendable {
    /// `/genesys.cs.v1.ContextServices/StartTask`.
    let path: String
    /// `genesys.cs.v1.ContextServices`.
    let service: String
    /// `StartTask`.
    let name: String
    /// Full names: `genesys.cs.v1.StartTaskRequest`, `genesys.cs.v1.StartTaskResponse`.
    let requestType: String
    let responseType: String
    let serverStreaming: Bool
    let requestFields: [ProtoField]
    let responseFields: [ProtoField]

    /// The request message's short name, for error messages: `StartTaskRequest`.
    var requestName: Substring { requestType[requestType.index(after: requestType.lastIndex(of: ".") ?? requestType.startIndex)...] }
}

extension Array where Element == ProtoField {
    /// The field called `name`; nil when the message has none.
    func named(_ name: String) -> ProtoField? {
        first { $0.name == name }
    }
}

extension ProtoSchema {
    /// The fields of the message `typeName`, which the generated table must hold (a message the
    /// served .proto files define).
    static func fields(of typeName: String) -> [ProtoField] {
        guard let fields = fields[typeName] else { preconditionFailure("no field map for \(typeName): regenerate the RPC table") }
        return fields
    }

    /// The field `name` of `typeName`, which the proto must define: a programmer's error otherwise,
    /// caught by the codec tests at the first use of the table.
    static func field(_ typeName: String, _ name: String) -> ProtoField {
        guard let field = fields(of: typeName).named(name) else {
            preconditionFailure("\(typeName) has no field \(name): the codec and proto/ disagree")
        }
        return field
    }
}

extension RPCMethod {
    /// This RPC's row of the generated table.
    @inline(__always)
    var descriptor: RPCDescriptor { Self.table[rawValue] }

    /// Exact, case-sensitive match of the whole `:path`; nil for any other path.
    init?(path: some StringProtocol) {
        let utf8 = path.utf8
        let found: RPCMethod?? = utf8.withContiguousStorageIfAvailable { RPCMethod(pathBytes: $0) }
        if let found {
            guard let method = found else { return nil }
            self = method
        } else {
            guard let method = RPCMethod(pathBytes: Array(utf8)) else { return nil }
            self = method
        }
    }

    private init?(pathBytes: some Collection<UInt8>) {
        // A dozen candidates: a length check rejects most at once; no String is made.
        for (i, rpc) in Self.table.enumerated() {
            let candidate = rpc.path.utf8
            if candidate.count == pathBytes.count && candidate.elementsEqual(pathBytes) {
                self.init(rawValue: i)
                return
            }
        }
        return nil
    }

    var path: String { descriptor.path }

    /// The request message's name, for error messages.
    var requestName: Substring { descriptor.requestName }

    /// Whether the method is answered by the gateway itself (grpc.health.v1) rather than
    /// forwarded to the core: it maps to no operation of the contract.
    var isHealth: Bool { RPCContract.of(self) == nil }

    /// `/package.Service/Method` of any service of proto/ (reflection's included): a gRPC path,
    /// never a REST one (those start with the base path).
    static func isRPCPath(_ target: String) -> Bool {
        servicePathPrefixes.contains { target.hasPrefix($0) }
    }
}
