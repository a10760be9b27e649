import ContextModel
import GRPCServer
import NIOCore
import Testing
@testable import Gateway

/// Responses are written once, behind gRPC's 5-byte prefix (gateway/bench/copies.md, R3 and
/// R4): the framed buffer must be exactly the prefix followed by what the `[UInt8]` writer
/// produced before (pinned below: the golden vectors, and the outputs of that writer for every
/// other response the codec tests cover, recorded at 5c65d27).
@Suite("Responses framed as they are written")
struct FramedResponseTests {
    static func framed(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

    @Test("Golden vectors: prefix + the bytes Python serializes", arguments: GoldenVectors.responses)
    func golden(_ vector: ResponseVector) throws {
        let buffer = try Codec.encodeResponse(vector.method, location: vector.location, body: vector.body)
        #expect(hex(Self.framed(buffer)) == hex(grpcPrefix(vector.protobuf.count) + vector.protobuf))
        #expect(buffer.readerIndex == 0, "the prefix is the buffer's first bytes")
    }

    @Test("The other answers of the codec tests: prefix + the [UInt8] writer's bytes", arguments: [
        (RPCMethod.queryTask, String?.none,
         #"{"service_id":1,"task_id":1,"task_type":"x","state_id":2,"est_duration":5,"started":{"timestamp":"2017-04-27T10:18:00.000Z","interaction_id":"42"},"completed":{"timestamp":"2017-04-27T10:25:41.123Z","disposition":3,"note":1},"big":12345678901234567890}"#,
         "0a7b080110011a031201782002280532200a1e0a18323031372d30342d32375431303a31383a30302e3030305a1a0234323a2c0a1a0a18323031372d30342d32375431303a32353a34312e3132335a12020803220a7b226e6f7465223a317d421c7b22626967223a31323334353637383930313233343536373839307d"),
        (.startTask, "/genesys/1/cs/service/21456878/tasks/15928", #"{"task_id":15928}"#,
         "08b87c122a2f67656e657379732f312f63732f736572766963652f32313435363837382f7461736b732f3135393238"),
        (.queryTask, nil, #"{"task_id":1,"task_type":null,"completed":null,"x":null}"#, "0a0e1001420a7b2278223a6e756c6c7d"),
        (.queryTask, nil, #"{"task_id":1,"x":null}"#, "0a0e1001420a7b2278223a6e756c6c7d"),
        // Empty messages: the prefix alone.
        (.completeTask, nil, "{}", ""),
        (.deleteService, nil, "", ""),
    ])
    func pinned(_ method: RPCMethod, _ location: String?, _ body: String, _ old: String) throws {
        let buffer = try Codec.encodeResponse(method, location: location, body: Array(body.utf8))
        let expected = bytes(hex: old)
        #expect(hex(Self.framed(buffer)) == hex(grpcPrefix(expected.count) + expected))
    }

    @Test("A sub-message's length slid in front takes 1, 2 or 3 bytes and moves the message intact")
    func slidLengths() throws {
        for size in [0, 1, 126, 127, 128, 129, 16_383, 16_384, 20_000] {
            let text = String(repeating: "a", count: size)
            var writer = ProtobufWriter(capacity: 0)
            writer.int(1, 7)
            writer.message(2) { $0.message(3) { $0.string(4, text) } }
            writer.int(5, 9)
            func varint(_ v: Int) -> [UInt8] {
                var v = v, out: [UInt8] = []
                while v >= 0x80 { out.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
                return out + [UInt8(v)]
            }
            let inner = [0x22] + varint(size) + Array(text.utf8)  // field 4, string
            let middle = [0x1A] + varint(inner.count) + inner  // field 3, message
            let message = [0x08, 7] + [0x12] + varint(middle.count) + middle + [0x28, 9]
            #expect(Self.framed(writer.framed()) == grpcPrefix(message.count) + message, "size \(size)")
        }
    }

    /// FNV-1a 64 of `bytes`: the reflection answers are a few KB of descriptors each.
    static func fnv(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return h
    }

    @Test("Server reflection answers: prefix + the [UInt8] writer's bytes (length and FNV-1a of those)", arguments: [
        ("0a01683a00", 154, UInt64(4_952_949_240_246_696_125)),  // list_services, host "h"
        ("1a2467656e657379732f63732f76312f636f6e746578745f73657276696365732e70726f746f", 7795, 16_585_334_387_361_142_403),
        ("0a04686f7374221d67656e657379732e63732e76312e436f6e746578745365727669636573", 7800, 3_684_312_232_822_488_783),
        ("2215677270632e6865616c74682e76312e4865616c7468", 489, 727_301_136_418_749_037),
        ("2a00", 67, 11_607_606_204_075_932_483),  // file_containing_extension: NOT_FOUND response
        ("321267656e657379732e63732e76312e5461736b", 107, 2_161_428_258_898_376_764),
        ("1a0a6e6f70652e70726f746f", 63, 17_180_263_000_409_753_058),  // an unknown file
    ])
    func reflection(_ request: String, _ length: Int, _ hash: UInt64) throws {
        let answer = try ServerReflection.answer(bytes(hex: request)).get()
        let all = Self.framed(answer.framed)
        #expect(Array(all.prefix(5)) == grpcPrefix(length))
        #expect(all.count == length + 5)
        #expect(Self.fnv(Array(all.dropFirst(5))) == hash)
        #expect(Array(answer.message.readableBytesView) == Array(all.dropFirst(5)))
    }

    @Test("Health answers are framed HealthCheckResponses")
    func health() {
        #expect(Self.framed(ContextGateway.serving.framed) == [0, 0, 0, 0, 2, 0x08, 1])
        #expect(Self.framed(ContextGateway.notServing.framed) == [0, 0, 0, 0, 2, 0x08, 2])
    }
}
