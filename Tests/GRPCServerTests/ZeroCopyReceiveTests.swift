import ContextModel
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer
@testable import NGHTTP2

/// The way in without copies (gateway/bench/copies.md, G1): a DATA chunk is a slice of the
/// buffer the socket was read into, and a message that lies whole in one chunk is a slice of
/// that, so the service reads the very bytes NIO read. Sharing is checked by address: a slice
/// points into its parent's bytes, a copy does not.
@Suite("gRPC over HTTP/2: request messages are not copied on the way in")
struct ZeroCopyReceiveTests {
    /// The address range of `buffer`'s readable bytes.
    static func range(_ buffer: ByteBuffer) -> Range<UInt> {
        buffer.withUnsafeReadableBytes { raw in
            let start = UInt(bitPattern: raw.baseAddress)
            return start..<(start + UInt(raw.count))
        }
    }

    /// Everything the client has queued, given to the server as one read; the address range of
    /// that read's bytes.
    static func deliverInOneRead(_ client: H2TestClient, to channel: EmbeddedChannel) throws -> Range<UInt> {
        var wire = ByteBufferAllocator().buffer(capacity: 0)
        try client.session.drainOutput(into: &wire)
        let input = range(wire)
        try channel.writeInbound(wire)
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
        return input
    }

    /// Whether `inner`'s readable bytes lie inside `outer`'s (shared storage, not a copy).
    static func lies(_ inner: ByteBuffer, in outer: Range<UInt>) -> Bool {
        let r = range(inner)
        return !r.isEmpty && outer.contains(r.lowerBound) && r.upperBound <= outer.upperBound
    }

    /// Whether nothing but `buffer` holds its storage: writing to a shared buffer would copy
    /// it first (copy on write), and so move its bytes.
    static func isUnique(_ buffer: inout ByteBuffer) -> Bool {
        let before = range(buffer).lowerBound
        let after = buffer.withUnsafeMutableReadableBytes { UInt(bitPattern: $0.baseAddress) }
        return before == after
    }

    @Test("A chunk holding whole messages yields slices of it, and the reader keeps none of it")
    func wholeMessagesAreSlices() throws {
        var chunk = ByteBuffer(bytes: H2TestClient.framed([1, 2, 3]) + H2TestClient.framed(Array(repeating: 7, count: 200)))
        let input = Self.range(chunk)
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        var messages: [ByteBuffer] = []
        for event in reader.feed(chunk) {
            guard case .message(let m) = event else { Issue.record("unexpected \(event)"); continue }
            messages.append(m)
        }
        #expect(messages.map { Array($0.readableBytesView) } == [[1, 2, 3], Array(repeating: 7, count: 200)])
        #expect(Self.range(messages[0]).lowerBound == input.lowerBound + 5, "the first message is the chunk's bytes after its prefix")
        #expect(Self.lies(messages[1], in: input), "the second message is a slice of the chunk too")
        #expect(!reader.hasPartialMessage)
        // Once the messages are gone, nothing of the chunk is held: the reader let it go.
        messages.removeAll()
        #expect(Self.isUnique(&chunk), "the reader still holds the chunk it read whole messages from")
    }

    @Test("A message split across chunks is gathered, and holds neither chunk once complete")
    func splitMessages() throws {
        let stream = H2TestClient.framed(Array(0..<100)) + H2TestClient.framed([5]) + H2TestClient.framed(Array(repeating: 9, count: 40))
        for split in [1, 3, 5, 6, 50, 104, 105, 106, 110] {
            var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
            var chunks: [ByteBuffer] = []
            var messages: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let chunk = ByteBuffer(bytes: stream[i..<min(i + split, stream.count)])
                chunks.append(chunk)
                for event in reader.feed(chunk) {
                    if case .message(let m) = event { messages.append(Array(m.readableBytesView)) }
                }
                i += split
            }
            #expect(messages == [Array(0..<100), [5], Array(repeating: 9, count: 40)], "split \(split)")
            #expect(!reader.hasPartialMessage, "split \(split)")
            for k in chunks.indices {
                #expect(Self.isUnique(&chunks[k]), "split \(split): chunk \(k) is still held")
            }
        }
    }

    @Test("A partial message keeps its chunk only until the rest arrives")
    func partialPinsUntilComplete() throws {
        let framed = H2TestClient.framed(Array(repeating: 3, count: 30))
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        var first = ByteBuffer(bytes: framed[0..<10])
        #expect(reader.feed(first) == [])
        #expect(reader.hasPartialMessage)
        let events = reader.feed(ByteBuffer(bytes: framed[10...]))
        #expect(events == [.message(ByteBuffer(bytes: Array(repeating: 3, count: 30)))])
        #expect(Self.isUnique(&first), "the first chunk is still held after its message completed")
    }

    /// Records the DATA chunks a server session hands on.
    final class ChunkRecorder: NGHTTP2SessionDelegate {
        var chunks: [ByteBuffer] = []
        func streamOpened(_ streamID: Int32) {}
        func settingsReceived(_ isAck: Bool) {}
        func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {}
        func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {}
        func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {}
        func data(_ streamID: Int32, _ chunk: ByteBuffer) { chunks.append(chunk) }
        func dataEndedStream(_ streamID: Int32) {}
        func streamClosed(_ streamID: Int32, errorCode: UInt32) {}
        func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) { (0, true) }
        func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool) { (0, true) }
        func writeBody(_ streamID: Int32, count: Int, into output: inout ByteBuffer) -> Bool { false }
        func frameSent(_ streamID: Int32, endStream: Bool) {}
        func bodyComplete(_ streamID: Int32) -> Bool { false }
    }

    @Test("nghttp2's DATA chunks reach the delegate as slices of the buffer fed to the session")
    func sessionHandsOnSlices() throws {
        let client = try H2TestClient(channel: EmbeddedChannel())
        let message = Array((0..<300).map { UInt8($0 % 256) })
        try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(message), chunk: 100)
        var wire = ByteBufferAllocator().buffer(capacity: 0)
        try client.session.drainOutput(into: &wire)
        let recorder = ChunkRecorder()
        let server = try NGHTTP2Session(role: .server, delegate: recorder, settings: .defaults)
        try server.receive(wire)
        let input = Self.range(wire)
        #expect(recorder.chunks.count == 4, "DATA frames of 100 bytes")
        #expect(recorder.chunks.flatMap { Array($0.readableBytesView) } == H2TestClient.framed(message))
        for chunk in recorder.chunks {
            #expect(Self.lies(chunk, in: input), "a DATA chunk was copied")
        }
    }

    @Test("The service reads a whole-message request in the buffer NIO read, not a copy; split ones still arrive whole")
    func handlerDispatchesSlices() throws {
        let (channel, client, service) = try GRPCServerHandlerTests.make()
        let whole = Array((0..<500).map { UInt8($0 % 253) })
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(whole))
        // Split over three DATA frames of the same read: gathered.
        let split = Array(repeating: UInt8(4), count: 250)
        let splitID = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(split), chunk: 100)
        let input = try Self.deliverInOneRead(client, to: channel)
        try #require(service.requests.count == 2)
        #expect(Array(service.requests[0].message.readableBytesView) == whole)
        #expect(Self.lies(service.requests[0].message, in: input), "the request message was copied")
        #expect(Array(service.requests[1].message.readableBytesView) == split)
        #expect(!Self.lies(service.requests[1].message, in: input), "a split message is gathered in storage of its own")
        try client.exchange()
        #expect(client.streams[id]?.data == H2TestClient.framed(whole))
        #expect(client.streams[splitID]?.data == H2TestClient.framed(split))
        #expect(client.streams[id]?.trailer("grpc-status") == "0")
        #expect(client.streams[splitID]?.trailer("grpc-status") == "0")
    }

    @Test("What a stream keeps past its read is copied out of the read buffer; a call dispatched in its read is not")
    func keptBytesDoNotPinTheReadBuffer() throws {
        let (channel, client, service) = try GRPCServerHandlerTests.make()
        let held = Array((0..<300).map { UInt8($0 % 251) })
        // A whole message without END_STREAM (it waits for the client to half-close), a
        // partial one, and a call complete in the same read.
        let heldID = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(held), keepOpen: true)
        let partial = H2TestClient.framed(Array(repeating: 7, count: 400))
        let partialID = try client.request(path: "/test.Echo/Call", body: Array(partial.prefix(100)), keepOpen: true)
        let big = Array(repeating: UInt8(9), count: 10_000)  // one DATA frame (16 KiB max)
        let bigID = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(big))
        let input = try Self.deliverInOneRead(client, to: channel)
        try #require(service.requests.count == 1)
        #expect(Self.lies(service.requests[0].message, in: input), "dispatched in its read: a slice, not a copy")
        #expect(Array(service.requests[0].message.readableBytesView) == big)

        client.send([], on: heldID, end: true)
        client.send(Array(partial.dropFirst(100)), on: partialID, end: true)
        try client.exchange()
        try #require(service.requests.count == 3)
        let heldMessage = try #require(service.requests.first { $0.message.readableBytes == held.count }).message
        let completed = try #require(service.requests.first { $0.message.readableBytes == 400 }).message
        #expect(Array(heldMessage.readableBytesView) == held)
        #expect(!Self.lies(heldMessage, in: input), "a message kept past its read still shares the read buffer")
        #expect(Array(completed.readableBytesView) == Array(repeating: 7, count: 400))
        #expect(!Self.lies(completed, in: input))
        for id in [heldID, partialID, bigID] { #expect(client.streams[id]?.trailer("grpc-status") == "0") }
    }

    @Test("Compacting a stream copies only what shares a larger buffer")
    func compactCopiesOnlySlicesOfLargerBuffers() {
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        var big = ByteBufferAllocator().buffer(capacity: 8192)
        big.writeBytes(H2TestClient.framed(Array(repeating: 1, count: 50)).prefix(20))
        big.writeBytes(Array(repeating: 0, count: 4000))
        let chunk = big.getSlice(at: 0, length: 20)!
        #expect(reader.feed(chunk) == [])
        #expect(reader.pinsLargerBuffer)
        reader.compact()
        #expect(!reader.pinsLargerBuffer)
        #expect(reader.hasPartialMessage)
        let rest = ByteBuffer(bytes: H2TestClient.framed(Array(repeating: 1, count: 50)).dropFirst(20))
        #expect(reader.feed(rest) == [.message(ByteBuffer(bytes: Array(repeating: 1, count: 50)))])
        var own = ByteBuffer(bytes: Array(repeating: 2, count: 100))
        #expect(!ByteBuffer.pinsLarger(own), "a buffer of its own size is kept as it is")
        #expect(Self.isUnique(&own))
    }
}
