import CProtobufC
import ContextModel
import ContextProto
import Testing
@testable import Gateway
@testable import GatewayHTTP

/// The generated RPC table (RPCDescriptors+Generated.swift) against the protobuf-c descriptors
/// generated from the same proto/ (rpc_table.c): the codec reads C structs through the table's
/// `index`, so the two must agree field by field. (Tests/python/test_rpc_table.py checks the
/// table against protoc's descriptors, and that the committed table is current.)
@Suite("Generated RPC table")
struct RPCTableTests {
    @Test("One row per case, in order, and the C table has the same rows", arguments: RPCMethod.allCases)
    func rows(_ method: RPCMethod) throws {
        #expect(RPCMethod.table.count == RPCMethod.allCases.count)
        #expect(cs_rpc_count() == RPCMethod.allCases.count)
        #expect(String(cString: try #require(cs_rpc_path(method.rawValue))) == method.path)
        #expect(method.path == "/\(method.descriptor.service)/\(method.descriptor.name)")
        try check(method.descriptor.requestType, method.descriptor.requestFields, #require(cs_rpc_request_descriptor(method.rawValue)))
        try check(method.descriptor.responseType, method.descriptor.responseFields, #require(cs_rpc_response_descriptor(method.rawValue)))
        #expect(cs_rpc_request_descriptor(RPCMethod.allCases.count) == nil)
    }

    /// Name, number, type, label and row of every field, down through the sub-messages the
    /// served files define.
    private func check(_ typeName: String, _ fields: [ProtoField], _ c: UnsafePointer<ProtobufCMessageDescriptor>) throws {
        #expect(String(cString: c.pointee.name) == typeName)
        #expect(Int(c.pointee.n_fields) == fields.count, "\(typeName)")
        for field in fields {
            let cField = c.pointee.fields[field.index]
            #expect(String(cString: cField.name) == field.name, "\(typeName).\(field.name)")
            #expect(Int(cField.id) == field.number, "\(typeName).\(field.name)")
            let oneof = cField.flags & UInt32(PROTOBUF_C_FIELD_FLAG_ONEOF.rawValue) != 0
            switch field.presence {
            case .repeated: #expect(cField.label == PROTOBUF_C_LABEL_REPEATED)
            case .oneof: #expect(oneof)
            case .explicit: #expect(oneof || cField.type == PROTOBUF_C_TYPE_MESSAGE, "\(typeName).\(field.name)")
            case .implicit: #expect(!oneof && cField.label == PROTOBUF_C_LABEL_NONE, "\(typeName).\(field.name)")
            }
            let expected: ProtobufCType = switch field.type {
            case .int32: PROTOBUF_C_TYPE_INT32
            case .int64: PROTOBUF_C_TYPE_INT64
            case .bool: PROTOBUF_C_TYPE_BOOL
            case .string: PROTOBUF_C_TYPE_STRING
            case .enumeration: PROTOBUF_C_TYPE_ENUM
            case .message: PROTOBUF_C_TYPE_MESSAGE
            default: PROTOBUF_C_TYPE_BYTES  // proto/ has no other type; this fails if it gains one
            }
            #expect(cField.type == expected, "\(typeName).\(field.name)")
            if field.type == .message, let sub = field.typeName, let subFields = ProtoSchema.fields[sub] {
                let subC = try #require(cField.descriptor).assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                try check(sub, subFields, subC)
            }
        }
    }

    @Test("Every RPC of ContextServices has a contract operation, and the contract names only RPCs of the table")
    func contract() {
        for method in RPCMethod.allCases {
            #expect((RPCContract.of(method) != nil) == (method.descriptor.service == "genesys.cs.v1.ContextServices"), "\(method)")
        }
        #expect(Set(RPCContract.byName.keys).isSubset(of: Set(RPCMethod.table.map(\.name))))
        // The plans resolve (they trap on a proto the codec cannot carry).
        #expect(RequestPlan.byMethod.compactMap { $0 }.count == RPCContract.byName.count)
    }

    @Test("RPC paths: every service of proto/, reflection's included; nothing else", arguments: [
        ("/genesys.cs.v1.ContextServices/StartTask", true),
        ("/genesys.cs.v1.ContextServices/Anything", true),
        ("/grpc.health.v1.Health/Check", true),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", true),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", true),
        ("/genesys/1/cs/services/start", false),
        ("/genesys.cs.v1.ContextService/StartTask", false),
        ("/healthz", false),
    ])
    func rpcPaths(_ path: String, _ isRPC: Bool) {
        #expect(ContextGateway.isRPCPath(path) == isRPC)
    }
}
