import ContextModel
import ContextProto
import NIOCore
import Testing
@testable import LoadTool

@Suite("Request and answer encoding")
struct CodecTests {
    @Test("A StartTask packed by protobuf-c unpacks with every field it was given")
    func startTaskRoundTrip() throws {
        let content = ProtoContent(JourneyPlan.standard.steps[2].content)
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        ProtoCodec.encode(LoadCall(method: .startTask, serviceID: 42, stateID: 3, step: 2), content, into: &buffer)

        // gRPC prefix: not compressed, big-endian length of the rest.
        let prefix = buffer.readInteger(as: UInt8.self)
        let announced = buffer.readInteger(endianness: .big, as: UInt32.self)
        let flag = try #require(prefix)
        let length = try #require(announced)
        #expect(flag == 0)
        #expect(Int(length) == buffer.readableBytes)

        let bytes = Array(buffer.readableBytesView)
        let m = try #require(bytes.withUnsafeBufferPointer {
            genesys__cs__v1__start_task_request__unpack(nil, $0.count, $0.baseAddress)
        })
        defer { genesys__cs__v1__start_task_request__free_unpacked(m, nil) }
        #expect(m.pointee.service_id == 42)
        #expect(m.pointee.state_id == 3)
        #expect(String(cString: m.pointee.task_type.pointee.name) == JourneyPlan.standard.steps[2].content.typeName)
        #expect(m.pointee._extensions_json_case == GENESYS__CS__V1__START_TASK_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON)
        #expect(String(cString: m.pointee.extensions_json) == JourneyPlan.standard.steps[2].content.extensionsJSON)
        #expect(String(cString: m.pointee.event.pointee.interaction_id) == JourneyPlan.standard.steps[2].content.interactionID)
    }

    @Test("Every step of a journey packs into a message of its request type")
    func everyStepPacks() {
        for (i, step) in JourneyPlan.standard.steps.enumerated() {
            var buffer = ByteBufferAllocator().buffer(capacity: 0)
            let call = LoadCall(method: step.method, serviceID: 9, stateID: 2, taskID: 4, step: i)
            ProtoCodec.encode(call, ProtoContent(step.content), into: &buffer)
            #expect(buffer.readableBytes > 5, "\(step.method)")
        }
    }

    @Test("Answers: the id of a start, nil for bytes that are no message")
    func answers() {
        // StartTaskResponse { task_id: 7, location: "/x" }
        let answer: [UInt8] = [0x08, 0x07, 0x12, 0x02, 0x2F, 0x78]
        #expect(answer.withUnsafeBytes { ProtoCodec.decodeAnswer(.startTask, $0) } == 7)
        // StartServiceResponse { service_id: 300 }
        #expect([UInt8]([0x08, 0xAC, 0x02]).withUnsafeBytes { ProtoCodec.decodeAnswer(.startService, $0) } == 300)
        // An empty message is a valid CompleteTaskResponse.
        #expect([UInt8]().withUnsafeBytes { ProtoCodec.decodeAnswer(.completeTask, $0) } == 0)
        // A truncated varint is not a message.
        #expect([UInt8]([0x08, 0xFF]).withUnsafeBytes { ProtoCodec.decodeAnswer(.startTask, $0) } == nil)
    }

    @Test("REST bodies put a task's state first and keep the extensions as written")
    func restBody() {
        let content = EventContent(typeName: "billing", estDuration: 5, extensionsJSON: #"{ "a":1.0e+2, "b":[1,2] }"#)
        let members = RESTCodec.members(content, method: .startTask)
        #expect(String(decoding: RESTCodec.body(members: members, stateID: 4), as: UTF8.self)
                == #"{"state_id":4,"task_type":"billing","est_duration":5,"a":1.0e+2, "b":[1,2]}"#)
        #expect(String(decoding: RESTCodec.body(members: [], stateID: 0), as: UTF8.self) == "{}")
        #expect(RESTCodec.innerMembers(Array("{}".utf8)).isEmpty)
    }

    @Test("REST routes are the contract's paths")
    func restRoutes() {
        let base = RESTRoute.defaultBasePath
        #expect(RESTCodec.route(LoadCall(method: .startTask, serviceID: 5)).target(basePath: base) == "/genesys/1/cs/services/5/tasks/start")
        #expect(RESTCodec.route(LoadCall(method: .completeState, serviceID: 5, stateID: 2)).target(basePath: base) == "/genesys/1/cs/services/5/states/2/end")
        #expect(RESTCodec.route(LoadCall(method: .queryService, serviceID: 5)).target(basePath: base)
                == "/genesys/1/cs/services/5?active_states=true&completed_states=true&active_tasks=true&completed_tasks=true")
    }

    @Test("The id of a REST start answer", arguments: [
        (#"{"task_id":7}"#, "task_id", Int64?.some(7)),
        (#"{ "task_id" : 123 }"#, "task_id", 123),
        (#"{"service_id":9223372036854775807}"#, "service_id", Int64.max),
        (#"{"service_id":9223372036854775808}"#, "service_id", nil),
        (#"{"task_id":"7"}"#, "task_id", nil),
        (#"{"state_id":0}"#, "state_id", nil),
        (#"{"message":"x"}"#, "task_id", nil),
    ])
    func restID(body: String, key: String, expected: Int64?) {
        let found = Array(body.utf8).withUnsafeBytes { RESTCodec.integer(after: Array("\"\(key)\"".utf8), in: $0) }
        #expect(found == expected)
    }

    @Test("grpc-timeout uses the finest unit that fits in 8 digits, rounded up", arguments: [
        (TimeAmount.milliseconds(10_000), "10000000u"),
        (.milliseconds(250), "250000u"),
        (.seconds(1_000), "1000000m"),
        (.seconds(200_000), "200000S"),
        (.nanoseconds(1), "1n"),
        (.nanoseconds(100_000_001), "100001u"),
    ])
    func grpcTimeout(amount: TimeAmount, expected: String) {
        #expect(grpcTimeoutValue(amount) == expected)
    }

    @Test("grpc-message is percent-decoded")
    func grpcMessage() {
        let raw = Array("caf%C3%A9 100%25 %zz".utf8)
        #expect(raw.withUnsafeBytes { percentDecoded($0) } == "café 100% %zz")
    }
}
