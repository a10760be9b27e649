import ContextModel
import NIOCore

/// The bodies the benchmarks work on: a typical Start Task and a ~1 kB one, each as the REST
/// body a client sends, as the StartTaskRequest protobuf a gRPC client sends (the same fields,
/// extensions in `extensions_json`), and the core's answers.
public enum Fixtures {
    public static let serviceID: Int64 = 21456878

    // MARK: Typical Start Task (183 bytes)

    /// The standard fields of the typical start, as REST members.
    static let typicalStandard = #""task_type":"customer info","state_id":3,"est_duration":460,"timestamp":"2017-04-27T10:18:00.500Z""#
    /// Its attached data: a few extensions of each kind.
    static let typicalExtensions = #""question3":"will be better with cable tv","channel":"ivr","priority":5,"vip":true"#

    /// The REST body of the typical start (the order a client writes it in, not canonical).
    public static let typicalBody: [UInt8] = Array(("{" + typicalStandard + "," + typicalExtensions + "}").utf8)

    // MARK: ~1 kB Start Task (1017 bytes)

    static let largeStandard = #""task_type":"customer info","state_id":3,"est_duration":460,"timestamp":"2017-04-27T10:18:00.500Z","session_id":"s-0123456789abcdef0123456789abcd","interaction_id":"0001DaCW6DEW001E","application_type":5,"application_id":77,"resource_type":"agent","resource_id":88,"media_type":"voice""#
    /// 18 extensions: strings (one with escapes), numbers (one past 2^64, one fraction),
    /// booleans, null, arrays and nested objects.
    static let largeExtensions = #""customer_segment":"gold","account_number":"0012345678","question1":"billing","question2":"internet outage since monday","question3":"will be better with cable tv","callback_number":"+1-555-0100","language":"en-US","ivr_path":["main","billing","outage","agent"],"sentiment":-0.25,"attempts":3,"authenticated":true,"crm":{"case_id":"CAS-000123456","priority":"high","tags":["outage","repeat-caller"],"owner":{"team":"tier2","site":"dublin"}},"big":12345678901234567890,"note":"caller \"J. Doe\" asked for a call back after 6pm;\nprefers e-mail","order_ids":[1001,1002,1003,1004,1005],"address":{"street":"1 Main Street","city":"Springfield","zip":"12345","country":"US"},"device":{"model":"XR-500","firmware":"5.2.1"},"promo":null"#

    public static let largeBody: [UInt8] = Array(("{" + largeStandard + "," + largeExtensions + "}").utf8)

    // MARK: The same starts as StartTaskRequest protobuf

    /// `StartTaskRequest` of the typical start, extensions as `extensions_json`.
    public static let typicalRequest: [UInt8] = {
        var w = ProtobufEncoder()
        w.varint(1, UInt64(serviceID))
        w.varint(2, 3)  // state_id
        w.message(3) { $0.string(2, "customer info") }  // task_type { name }
        w.varint(4, 460)  // est_duration
        w.message(5) { $0.string(1, "2017-04-27T10:18:00.500Z") }  // event { timestamp }
        w.string(15, "{" + typicalExtensions + "}")
        return w.bytes
    }()

    /// `StartTaskRequest` of the typical start, extensions as a `google.protobuf.Struct`
    /// (what clients that build their attached data as a map send).
    public static let typicalStructRequest: [UInt8] = {
        var w = ProtobufEncoder()
        w.varint(1, UInt64(serviceID))
        w.varint(2, 3)
        w.message(3) { $0.string(2, "customer info") }
        w.varint(4, 460)
        w.message(5) { $0.string(1, "2017-04-27T10:18:00.500Z") }
        w.message(14) { s in  // Struct { map<string, Value> fields = 1 }
            s.structEntry("question3") { $0.string(3, "will be better with cable tv") }  // string_value
            s.structEntry("channel") { $0.string(3, "ivr") }
            s.structEntry("priority") { $0.double(2, 5) }  // number_value
            s.structEntry("vip") { $0.varint(4, 1) }  // bool_value
        }
        return w.bytes
    }()

    /// `StartTaskRequest` of the ~1 kB start.
    public static let largeRequest: [UInt8] = {
        var w = ProtobufEncoder()
        w.varint(1, UInt64(serviceID))
        w.varint(2, 3)
        w.message(3) { $0.string(2, "customer info") }
        w.varint(4, 460)
        w.message(5) { e in  // EventFields
            e.string(1, "2017-04-27T10:18:00.500Z")
            e.string(2, "s-0123456789abcdef0123456789abcd")
            e.string(3, "0001DaCW6DEW001E")
            e.message(4) { $0.varint(1, 5) }  // application_type { id }
            e.varint(5, 77)  // application_id
            e.message(6) { $0.string(2, "agent") }  // resource_type { name }
            e.varint(7, 88)  // resource_id
            e.message(8) { $0.string(2, "voice") }  // media_type { name }
        }
        w.string(15, "{" + largeExtensions + "}")
        return w.bytes
    }()

    // MARK: The core's answers

    /// Start Task's 201: its `Location` and body.
    public static let startTaskLocation = "/genesys/1/cs/service/21456878/tasks/1"
    public static let startTaskAnswer = ByteBuffer(string: #"{"task_id":1}"#)

    /// Query Task's 200 for the ~1 kB task: its representation (README, "Representations").
    public static let queryTaskAnswer = ByteBuffer(bytes:
        (#"{"service_id":21456878,"task_id":1,"task_type":"customer info","state_id":3,"est_duration":460,"started":{"timestamp":"2017-04-27T10:18:00.500Z","session_id":"s-0123456789abcdef0123456789abcd","interaction_id":"0001DaCW6DEW001E","application_type":5,"resource_type":"agent","media_type":"voice","application_id":77,"resource_id":88},"#
            + largeExtensions + "}").utf8)

    // MARK: Batches

    /// 256 Start Task items as the gateway's batcher gets them: the canonical body of the
    /// typical start, no tenant, a bearer token.
    public static func batchItems(count: Int = 256) -> [BatchItem] {
        let body = try! Event.parse(typicalBody, kind: .task, phase: .start).canonicalJSON
        return (0..<count).map { i in
            BatchItem(.startTask(serviceID: serviceID + Int64(i % 16)), authorization: "Bearer bench-token", body: body)
        }
    }

    /// The core's answer to those items: one 201 per item with its `Location` and body.
    public static func batchAnswer(count: Int = 256) -> ByteBuffer {
        let results = (0..<count).map { i in
            let service = serviceID + Int64(i % 16)
            let task = 1 + i / 16
            return BatchResult(status: 201, location: "/genesys/1/cs/service/\(service)/tasks/\(task)",
                               body: Array(#"{"task_id":\#(task)}"#.utf8))
        }
        return try! BatchCodec.encodeResponse(results)
    }
}

/// proto3 wire format, enough for the requests above (varint, 64-bit and length-delimited
/// fields, sub-messages). Written apart from the gateway's `ProtobufWriter` so that the
/// request bytes do not depend on the code under measurement.
public struct ProtobufEncoder {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    public mutating func varint(_ field: Int, _ value: UInt64) {
        rawVarint(UInt64(field) << 3)
        rawVarint(value)
    }

    public mutating func double(_ field: Int, _ value: Double) {
        rawVarint(UInt64(field) << 3 | 1)
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    public mutating func lengthDelimited(_ field: Int, _ value: [UInt8]) {
        rawVarint(UInt64(field) << 3 | 2)
        rawVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    public mutating func string(_ field: Int, _ value: String) {
        lengthDelimited(field, Array(value.utf8))
    }

    public mutating func message(_ field: Int, _ body: (inout ProtobufEncoder) -> Void) {
        var inner = ProtobufEncoder()
        body(&inner)
        lengthDelimited(field, inner.bytes)
    }

    /// One entry of `Struct.fields` (field 1, a map entry { key = 1; Value value = 2 }).
    public mutating func structEntry(_ key: String, _ value: (inout ProtobufEncoder) -> Void) {
        message(1) { entry in
            entry.string(1, key)
            entry.message(2, value)
        }
    }
}
