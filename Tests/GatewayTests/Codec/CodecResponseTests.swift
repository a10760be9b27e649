import CProtobufC
import ContextModel
import ContextProto
import NIOCore
import Testing
@testable import Gateway

@Suite("Codec: the core's answers → protobuf responses")
struct CodecResponseTests {
    @Test("Golden vector (the bytes Python serializes for the same message)", arguments: GoldenVectors.responses)
    func golden(_ vector: ResponseVector) throws {
        let bytes = try unframed(Codec.encodeResponse(vector.method, location: vector.location, body: vector.body))
        #expect(hex(bytes) == hex(vector.protobuf))
        // protobuf-c reads it back and writes the very same bytes.
        #expect(try repack(vector.method, bytes) == bytes)
    }

    @Test("Every RPC has a response vector")
    func coverage() {
        let covered = Set(GoldenVectors.responses.map(\.method))
        for method in RPCMethod.allCases where !method.isHealth {
            #expect(covered.contains(method), "no vector for \(method)")
        }
    }

    @Test("Query Task, read back with protobuf-c field by field")
    func queryTaskFields() throws {
        let body = #"{"service_id":1,"task_id":1,"task_type":"x","state_id":2,"est_duration":5,"started":{"timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42"},"completed":{"timestamp":"2017-04-27T10:25:41.123Z","disposition":3,"note":1},"big":12345678901234567890}"#
        let bytes = try unframed(Codec.encodeResponse(.queryTask, location: nil, body: Array(body.utf8)))
        try bytes.withUnsafeBufferPointer { buffer in
            let response = try #require(genesys__cs__v1__query_task_response__unpack(nil, buffer.count, buffer.baseAddress))
            defer { genesys__cs__v1__query_task_response__free_unpacked(response, nil) }
            let task = try #require(response.pointee.task).pointee
            #expect(task.service_id == 1)
            #expect(task.task_id == 1)
            let type = try #require(task.task_type).pointee
            #expect(type.value_case == GENESYS__CS__V1__BUSINESS_ATTRIBUTE__VALUE_NAME)
            #expect(String(cString: type.name) == "x")
            #expect(task.state_id == 2)
            #expect(task._est_duration_case == GENESYS__CS__V1__TASK___EST_DURATION_EST_DURATION)
            #expect(task.est_duration == 5)
            #expect(String(cString: task.extensions_json) == #"{"big":12345678901234567890}"#)

            let started = try #require(task.started).pointee
            let startedFields = try #require(started.fields).pointee
            #expect(String(cString: startedFields.timestamp) == "2017-04-27T10:18:00.000Z")
            #expect(String(cString: startedFields.interaction_id) == "42")
            #expect(startedFields._session_id_case == GENESYS__CS__V1__EVENT_FIELDS___SESSION_ID__NOT_SET)
            #expect(started.disposition == nil)
            #expect(String(cString: started.extensions_json) == "")

            let completed = try #require(task.completed).pointee
            #expect(String(cString: try #require(completed.fields).pointee.timestamp) == "2017-04-27T10:25:41.123Z")
            let disposition = try #require(completed.disposition).pointee
            #expect(disposition.value_case == GENESYS__CS__V1__BUSINESS_ATTRIBUTE__VALUE_ID)
            #expect(disposition.id == 3)
            #expect(String(cString: completed.extensions_json) == #"{"note":1}"#)
        }
    }

    @Test("Start Task: the id and the Location, read back with protobuf-c")
    func startTaskFields() throws {
        let bytes = try unframed(Codec.encodeResponse(
            .startTask, location: "/genesys/1/cs/service/21456878/tasks/15928", body: Array(#"{"task_id":15928}"#.utf8)))
        try bytes.withUnsafeBufferPointer { buffer in
            let response = try #require(genesys__cs__v1__start_task_response__unpack(nil, buffer.count, buffer.baseAddress))
            defer { genesys__cs__v1__start_task_response__free_unpacked(response, nil) }
            #expect(response.pointee.task_id == 15928)
            #expect(String(cString: response.pointee.location) == "/genesys/1/cs/service/21456878/tasks/15928")
        }
    }

    @Test("An answer that breaks the contract is INTERNAL", arguments: [
        (RPCMethod.startTask, "{}"),
        (.startTask, #"{"task_id":"15928"}"#),
        (.startTask, #"{"task_id":0}"#),
        (.startTask, #"{"task_id":2147483648}"#),
        (.startService, #"{"task_id":1}"#),
        (.startState, "not json"),
        (.startState, ""),
        (.queryTask, #"{"task_id":1,"started":5}"#),
        (.queryTask, #"{"task_id":1,"task_type":true}"#),
        (.queryTask, #"{"task_id":1,"est_duration":-1}"#),
        (.queryTask, #"[{"task_id":1}]"#),
        (.queryState, #"{"state_id":1,"active_tasks":[1]}"#),
        (.queryService, #"{"service_id":1,"active_states":{}}"#),
        (.queryTasks, #"{"task_id":1}"#),
        (.queryTasks, #"[{"task_id":1},"x"]"#),
        (.queryTasks, #"[{"task_id":1}"#),
    ])
    func badAnswer(_ method: RPCMethod, _ body: String) {
        #expect {
            try Codec.encodeResponse(method, location: nil, body: Array(body.utf8))
        } throws: { error in
            (error as? GRPCStatus)?.code == .internalError
        }
    }

    @Test("null reads as an absent field")
    func nulls() throws {
        let bytes = try unframed(Codec.encodeResponse(
            .queryTask, location: nil, body: Array(#"{"task_id":1,"task_type":null,"completed":null,"x":null}"#.utf8)))
        let expected = try unframed(Codec.encodeResponse(.queryTask, location: nil, body: Array(#"{"task_id":1,"x":null}"#.utf8)))
        #expect(bytes == expected)
    }

    @Test("Array elements are cut at top-level commas only")
    func slicer() {
        let json = Array(#"[ 1 , "a,]\"" ,{"b":[1,2]},[[]] ,null]"#.utf8)
        let parts = json.withUnsafeBytes { raw in
            JSONArraySlicer.elements(of: raw, 0..<json.count).map { String(decoding: json[$0], as: UTF8.self) }
        }
        #expect(parts == ["1", #""a,]\"""#, #"{"b":[1,2]}"#, "[[]]", "null"])
    }
}

/// The message of a framed response (`Codec.encodeResponse` writes it behind gRPC's 5-byte
/// prefix), after checking that the prefix announces it: flag 0, then its length.
func unframed(_ framed: ByteBuffer) throws -> [UInt8] {
    let all = Array(framed.readableBytesView)
    try #require(all.count >= 5, "no gRPC prefix")
    let message = Array(all.dropFirst(5))
    #expect(Array(all.prefix(5)) == grpcPrefix(message.count), "the prefix does not announce the message")
    return message
}

/// gRPC's prefix of an uncompressed message of `length` bytes.
func grpcPrefix(_ length: Int) -> [UInt8] {
    let n = UInt32(length)
    return [0, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
}

/// Unpacks `bytes` as the response message of `method` with protobuf-c and packs it again.
private func repack(_ method: RPCMethod, _ bytes: [UInt8]) throws -> [UInt8] {
    func run<M>(
        _ unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<M>?,
        _ size: (UnsafePointer<M>?) -> Int,
        _ pack: (UnsafePointer<M>?, UnsafeMutablePointer<UInt8>?) -> Int,
        _ free: (UnsafeMutablePointer<M>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void
    ) throws -> [UInt8] {
        // An empty message still needs an address (STACK-NOTES.md).
        let storage = bytes.isEmpty ? [0] : bytes
        let message = try #require(storage.withUnsafeBufferPointer { unpack(nil, bytes.count, $0.baseAddress) })
        defer { free(message, nil) }
        var out = [UInt8](repeating: 0, count: size(message))
        let written = out.withUnsafeMutableBufferPointer { pack(message, $0.baseAddress) }
        #expect(written == out.count)
        return out
    }
    switch method {
    case .startService:
        return try run(genesys__cs__v1__start_service_response__unpack, genesys__cs__v1__start_service_response__get_packed_size,
                       genesys__cs__v1__start_service_response__pack, genesys__cs__v1__start_service_response__free_unpacked)
    case .startState:
        return try run(genesys__cs__v1__start_state_response__unpack, genesys__cs__v1__start_state_response__get_packed_size,
                       genesys__cs__v1__start_state_response__pack, genesys__cs__v1__start_state_response__free_unpacked)
    case .startTask:
        return try run(genesys__cs__v1__start_task_response__unpack, genesys__cs__v1__start_task_response__get_packed_size,
                       genesys__cs__v1__start_task_response__pack, genesys__cs__v1__start_task_response__free_unpacked)
    case .queryService:
        return try run(genesys__cs__v1__query_service_response__unpack, genesys__cs__v1__query_service_response__get_packed_size,
                       genesys__cs__v1__query_service_response__pack, genesys__cs__v1__query_service_response__free_unpacked)
    case .queryState:
        return try run(genesys__cs__v1__query_state_response__unpack, genesys__cs__v1__query_state_response__get_packed_size,
                       genesys__cs__v1__query_state_response__pack, genesys__cs__v1__query_state_response__free_unpacked)
    case .queryTask:
        return try run(genesys__cs__v1__query_task_response__unpack, genesys__cs__v1__query_task_response__get_packed_size,
                       genesys__cs__v1__query_task_response__pack, genesys__cs__v1__query_task_response__free_unpacked)
    case .queryTasks:
        return try run(genesys__cs__v1__query_tasks_response__unpack, genesys__cs__v1__query_tasks_response__get_packed_size,
                       genesys__cs__v1__query_tasks_response__pack, genesys__cs__v1__query_tasks_response__free_unpacked)
    case .completeService:
        return try run(genesys__cs__v1__complete_service_response__unpack, genesys__cs__v1__complete_service_response__get_packed_size,
                       genesys__cs__v1__complete_service_response__pack, genesys__cs__v1__complete_service_response__free_unpacked)
    case .completeState:
        return try run(genesys__cs__v1__complete_state_response__unpack, genesys__cs__v1__complete_state_response__get_packed_size,
                       genesys__cs__v1__complete_state_response__pack, genesys__cs__v1__complete_state_response__free_unpacked)
    case .completeTask:
        return try run(genesys__cs__v1__complete_task_response__unpack, genesys__cs__v1__complete_task_response__get_packed_size,
                       genesys__cs__v1__complete_task_response__pack, genesys__cs__v1__complete_task_response__free_unpacked)
    case .deleteService:
        return try run(genesys__cs__v1__delete_service_response__unpack, genesys__cs__v1__delete_service_response__get_packed_size,
                       genesys__cs__v1__delete_service_response__pack, genesys__cs__v1__delete_service_response__free_unpacked)
    case .healthCheck, .healthWatch:
        Issue.record("no response vector for health")
        return []
    }
}

extension Codec {
    /// The answer's body as a byte array (the tests' vectors are text).
    static func encodeResponse(_ method: RPCMethod, location: String?, body: [UInt8]) throws(GRPCStatus) -> ByteBuffer {
        try encodeResponse(method, location: location, body: ByteBuffer(bytes: body))
    }
}
