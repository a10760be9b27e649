// The gateway's protobuf ⇄ JSON translation (Sources/Gateway/Codec): a StartTaskRequest
// unpacked with protobuf-c, validated by the model and written as canonical JSON
// (`Codec.decodeRequest`), and the core's answer turned into the response message
// (`Codec.encodeResponse`). One benchmark iteration is one call.
//
// `Codec` is internal to the Gateway module: built with `-Xswiftc -enable-testing` (micro.sh).
import Benchmark
import ContextModel
@testable import Gateway
import MicroFixtures

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = MicroConfiguration.standard

    // The translation must give the bytes a REST client sends (DESIGN.md §4): the canonical
    // JSON of the same start as a REST body. Checked once, before anything is measured.
    func decode(_ request: [UInt8]) -> UpstreamCall {
        try! request.withUnsafeBytes { bytes in try Codec.decodeRequest(.startTask, bytes) }
    }
    for (request, body) in [
        (Fixtures.typicalRequest, Fixtures.typicalBody),
        (Fixtures.typicalStructRequest, Fixtures.typicalBody),
        (Fixtures.largeRequest, Fixtures.largeBody),
    ] {
        let call = decode(request)
        precondition(call.route == .startTask(serviceID: Fixtures.serviceID))
        precondition(call.body == (try! Event.parse(body, kind: .task, phase: .start)).canonicalJSON,
                     "decodeRequest gave \(String(decoding: call.body.readableBytesView, as: UTF8.self))")
    }

    // 3. protobuf → canonical JSON: the request path of every unary RPC.
    Benchmark("Codec.decodeRequest.StartTask.typical") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(decode(Fixtures.typicalRequest))
        }
    }
    Benchmark("Codec.decodeRequest.StartTask.typicalStruct") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(decode(Fixtures.typicalStructRequest))
        }
    }
    Benchmark("Codec.decodeRequest.StartTask.1kB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(decode(Fixtures.largeRequest))
        }
    }

    // The response path: the core's JSON answer → the response message, framed (written
    // behind gRPC's 5-byte prefix, in the ByteBuffer that is the response body).
    let created = try! Codec.encodeResponse(.startTask, location: Fixtures.startTaskLocation, body: Fixtures.startTaskAnswer)
    precondition(created.readableBytes > 5)
    let queried = try! Codec.encodeResponse(.queryTask, location: nil, body: Fixtures.queryTaskAnswer)
    precondition(queried.readableBytes > 755)  // the extensions alone are 731 bytes of extensions_json
    Benchmark("Codec.encodeResponse.StartTask") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Codec.encodeResponse(.startTask, location: Fixtures.startTaskLocation, body: Fixtures.startTaskAnswer))
        }
    }
    Benchmark("Codec.encodeResponse.QueryTask.1kB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Codec.encodeResponse(.queryTask, location: nil, body: Fixtures.queryTaskAnswer))
        }
    }
}
