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

    @Test("The table-driven encoder packs every step byte for byte as protoc-c's per-message code does")
    func sameBytesAsThePerMessagePackers() {
        for (i, step) in JourneyPlan.standard.steps.enumerated() {
            for content in [ProtoContent(step.content), ProtoContent(JourneyPlan.startTaskContent)] {
                let call = LoadCall(method: step.method, serviceID: 9_000_000_001, stateID: 2, taskID: 4, step: i)
                var buffer = ByteBufferAllocator().buffer(capacity: 0)
                ProtoCodec.encode(call, content, into: &buffer)
                #expect(Array(buffer.readableBytesView.dropFirst(5)) == Self.reference(call, content), "\(step.method)")
            }
        }
    }

    /// What the load tool sent before the table: each request built field by field with the
    /// generated per-message functions.
    static func reference(_ call: LoadCall, _ content: ProtoContent) -> [UInt8] {
        func packed<M>(_ m: inout M, _ size: (UnsafePointer<M>) -> Int, _ pack: (UnsafePointer<M>, UnsafeMutablePointer<UInt8>) -> Int) -> [UInt8] {
            withUnsafePointer(to: &m) { p in
                var out = [UInt8](repeating: 0, count: size(p))
                if !out.isEmpty { _ = out.withUnsafeMutableBufferPointer { pack(p, $0.baseAddress!) } }
                return out
            }
        }
        switch call.method {
        case .startService:
            var m = Genesys__Cs__V1__StartServiceRequest()
            genesys__cs__v1__start_service_request__init(&m)
            m.service_type = content.typeName
            m.event = content.event
            if let id = content.customerID {
                m._customer_id_case = GENESYS__CS__V1__START_SERVICE_REQUEST___CUSTOMER_ID_CUSTOMER_ID
                m.customer_id = id
            }
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_SERVICE_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_SERVICE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__start_service_request__get_packed_size, genesys__cs__v1__start_service_request__pack)
        case .startState:
            var m = Genesys__Cs__V1__StartStateRequest()
            genesys__cs__v1__start_state_request__init(&m)
            m.service_id = call.serviceID
            m.state_type = content.typeName
            m.event = content.event
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_STATE_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_STATE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__start_state_request__get_packed_size, genesys__cs__v1__start_state_request__pack)
        case .startTask:
            var m = Genesys__Cs__V1__StartTaskRequest()
            genesys__cs__v1__start_task_request__init(&m)
            m.service_id = call.serviceID
            m.state_id = call.stateID
            m.task_type = content.typeName
            m.event = content.event
            if let d = content.estDuration {
                m._est_duration_case = GENESYS__CS__V1__START_TASK_REQUEST___EST_DURATION_EST_DURATION
                m.est_duration = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__START_TASK_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__start_task_request__get_packed_size, genesys__cs__v1__start_task_request__pack)
        case .completeTask:
            var m = Genesys__Cs__V1__CompleteTaskRequest()
            genesys__cs__v1__complete_task_request__init(&m)
            m.service_id = call.serviceID
            m.task_id = call.taskID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_TASK_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_TASK_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__complete_task_request__get_packed_size, genesys__cs__v1__complete_task_request__pack)
        case .completeState:
            var m = Genesys__Cs__V1__CompleteStateRequest()
            genesys__cs__v1__complete_state_request__init(&m)
            m.service_id = call.serviceID
            m.state_id = call.stateID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_STATE_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_STATE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__complete_state_request__get_packed_size, genesys__cs__v1__complete_state_request__pack)
        case .queryService:
            var m = Genesys__Cs__V1__QueryServiceRequest()
            genesys__cs__v1__query_service_request__init(&m)
            m.service_id = call.serviceID
            m.active_states = 1
            m.completed_states = 1
            m.active_tasks = 1
            m.completed_tasks = 1
            return packed(&m, genesys__cs__v1__query_service_request__get_packed_size, genesys__cs__v1__query_service_request__pack)
        case .completeService:
            var m = Genesys__Cs__V1__CompleteServiceRequest()
            genesys__cs__v1__complete_service_request__init(&m)
            m.service_id = call.serviceID
            m.event = content.event
            m.disposition = content.disposition
            if let d = content.dispositionDesc {
                m._disposition_desc_case = GENESYS__CS__V1__COMPLETE_SERVICE_REQUEST___DISPOSITION_DESC_DISPOSITION_DESC
                m.disposition_desc = d
            }
            if let x = content.extensionsJSON {
                m._extensions_json_case = GENESYS__CS__V1__COMPLETE_SERVICE_REQUEST___EXTENSIONS_JSON_EXTENSIONS_JSON
                m.extensions_json = x
            }
            return packed(&m, genesys__cs__v1__complete_service_request__get_packed_size, genesys__cs__v1__complete_service_request__pack)
        }
    }

    @Test("Answers: a query's answer without its resource is nil, with it 0")
    func queryAnswers() {
        // QueryServiceResponse { service: Service { service_id: 5 } }
        #expect([UInt8]([0x0A, 0x02, 0x08, 0x05]).withUnsafeBytes { ProtoCodec.decodeAnswer(.queryService, $0) } == 0)
        #expect([UInt8]().withUnsafeBytes { ProtoCodec.decodeAnswer(.queryService, $0) } == nil)
        // StartStateResponse { state_id: 3 }, int32
        #expect([UInt8]([0x08, 0x03]).withUnsafeBytes { ProtoCodec.decodeAnswer(.startState, $0) } == 3)
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
