// ContextModel's per-request work: the canonical JSON writer, the strict JSON reader (alone
// and with the model's validation), and the batch codec on the gateway's side of a batch.
// One benchmark iteration is one operation: the malloc counts are per operation.
import Benchmark
import ContextModel
import NIOCore
import MicroFixtures

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = MicroConfiguration.standard

    // Parsed once: the writer benchmarks start from the event the gateway would hold.
    let typicalEvent = try! Event.parse(Fixtures.typicalBody, kind: .task, phase: .start)
    let largeEvent = try! Event.parse(Fixtures.largeBody, kind: .task, phase: .start)
    precondition(Fixtures.largeBody.count > 1000 && largeEvent.extensions.count > 700)

    // 1. Canonical JSON writing.
    Benchmark("CanonicalJSON.typical") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(typicalEvent.canonicalJSON)
        }
    }
    Benchmark("CanonicalJSON.1kB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(largeEvent.canonicalJSON)
        }
    }

    // 2. Strict JSON reading: the reader alone, then the reader and the model (Event.parse,
    // what the core does with every REST body).
    Benchmark("StrictJSON.readObject.typical") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! StrictJSON.readObject(Fixtures.typicalBody))
        }
    }
    Benchmark("StrictJSON.readObject.1kB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! StrictJSON.readObject(Fixtures.largeBody))
        }
    }
    Benchmark("Event.parse.typical") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Event.parse(Fixtures.typicalBody, kind: .task, phase: .start))
        }
    }
    Benchmark("Event.parse.1kB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! Event.parse(Fixtures.largeBody, kind: .task, phase: .start))
        }
    }

    // 4. The batch codec, as the gateway's batcher uses it: the request body of 256 Start
    // Tasks built item by item (UpstreamBatcher), and the core's answer decoded.
    let items = Fixtures.batchItems(count: 256)
    let answer = Fixtures.batchAnswer(count: 256)
    precondition(try! BatchCodec.decodeResponse(answer).count == 256)
    // As the batcher does: every item measured when queued, one buffer of the sum.
    let batchSize = items.reduce(BatchCodec.headerBytes) { $0 + (try! BatchCodec.encodedSize(of: $1)) }
    Benchmark("BatchCodec.encode256") { benchmark in
        for _ in benchmark.scaledIterations {
            var body = ByteBufferAllocator().buffer(capacity: batchSize)
            try! BatchCodec.appendRequestHeader(count: items.count, to: &body)
            for item in items { try! BatchCodec.appendItem(item, to: &body) }
            blackHole(body)
        }
    }
    Benchmark("BatchCodec.decodeAnswer256") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try! BatchCodec.decodeResponse(answer))
        }
    }
}
