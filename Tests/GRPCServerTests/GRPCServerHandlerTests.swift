import ContextModel
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer

/// Stream state and gRPC framing, driven by a real nghttp2 client, byte by byte, no sleeps.
@Suite("gRPC over HTTP/2: stream state and framing")
struct GRPCServerHandlerTests {
    static func make(_ service: FakeService = FakeService(), maxMessageBytes: Int = 4 << 20) throws -> (EmbeddedChannel, H2TestClient, FakeService) {
        var config = GRPCServerHandler.Configuration()
        config.maxMessageBytes = maxMessageBytes
        let channel = EmbeddedChannel(handler: GRPCServerHandler(service: service, configuration: config))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, try H2TestClient(channel: channel), service)
    }

    @Test("A unary call fed one byte at a time, its message split over many DATA frames, is answered with headers, one message and trailers")
    func byteByByte() throws {
        let (_, client, service) = try Self.make()
        client.byteByByte = true
        let message = Array((0..<1000).map { UInt8($0 % 251) })
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(message),
                                    extraHeaders: [("contactcenterid", "tenant-a"), ("authorization", "Bearer x"), ("grpc-timeout", "5S")],
                                    chunk: 7)
        try client.exchange()
        #expect(service.requests.count == 1)
        let request = try #require(service.requests.first)
        #expect(Array(request.message.readableBytesView) == message)
        #expect(request.path == "/test.Echo/Call")
        #expect(request.tenant == "tenant-a")
        #expect(request.authorization == "Bearer x")
        #expect(request.deadline != nil)
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "200")
        #expect(stream.header("content-type") == "application/grpc")
        #expect(stream.header("grpc-status") == nil, "not trailers-only")
        #expect(stream.data == H2TestClient.framed(message))
        #expect(stream.trailer("grpc-status") == "0")
        #expect(stream.closedWith == 0)
    }

    @Test("Many calls on one connection, answered out of order, each get their own answer")
    func interleaved() throws {
        let (channel, client, service) = try Self.make()
        service.behaviour = .hold
        var ids: [Int32] = []
        for i in 0..<50 {
            ids.append(try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([UInt8(i), 1, 2])))
        }
        try client.exchange()
        #expect(service.held.count == 50)
        // Answer in reverse order, between reads (as upstream answers arrive).
        for (i, responder) in service.held.enumerated().reversed() {
            responder.succeed([UInt8(i), 9])
        }
        channel.embeddedEventLoop.run()
        try client.exchange()
        for (i, id) in ids.enumerated() {
            #expect(client.streams[id]?.data == H2TestClient.framed([UInt8(i), 9]))
            #expect(client.streams[id]?.grpcStatus == 0)
        }
    }

    @Test("An unknown method is answered UNIMPLEMENTED in a trailers-only response, without reading the message")
    func unknownMethod() throws {
        let (_, client, service) = try Self.make()
        let id = try client.request(path: "/other.Service/Nope", body: H2TestClient.framed([1, 2, 3]))
        try client.exchange()
        #expect(service.requests.isEmpty)
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "200")
        #expect(stream.header("grpc-status") == "12")
        #expect(stream.header("grpc-message") == "unknown method /other.Service/Nope")
        #expect(stream.data.isEmpty)
        #expect(stream.trailers.isEmpty)
    }

    @Test("Requests that are not gRPC: wrong content type → 415, wrong method → 405")
    func notGRPC() throws {
        let (_, client, service) = try Self.make()
        let json = try client.request(path: "/test.Echo/Call", body: [1], contentType: "application/json")
        let web = try client.request(path: "/test.Echo/Call", body: [1], contentType: "application/grpc-web")
        let plus = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]), contentType: "application/grpc+proto")
        try client.exchange()
        #expect(client.streams[json]?.header(":status") == "415")
        #expect(client.streams[web]?.header(":status") == "415")
        #expect(client.streams[plus]?.grpcStatus == 0)
        #expect(service.requests.count == 1)
    }

    @Test("Framing errors", arguments: [
        ("two messages", H2TestClient.framed([1]) + H2TestClient.framed([2]), 13),
        ("no message", [], 13),
        ("truncated prefix", [0, 0, 0], 13),
        ("truncated message", [0, 0, 0, 0, 9, 1, 2], 13),
        ("compressed flag without grpc-encoding", H2TestClient.framed([1], compressed: true), 13),
        ("message over the limit", [0, 0, 0, 4, 1], 8),
    ] as [(String, [UInt8], Int)])
    func framingErrors(_ name: String, _ body: [UInt8], _ code: Int) throws {
        let (_, client, service) = try Self.make(maxMessageBytes: 1024)
        let id = try client.request(path: "/test.Echo/Call", body: body)
        try client.exchange()
        #expect(service.requests.isEmpty, "\(name)")
        #expect(client.streams[id]?.grpcStatus == code, "\(name): \(client.streams[id].map { "\($0.headers)" } ?? "-")")
        #expect(client.streams[id]?.closedWith != nil, "\(name): the stream is closed")
    }

    @Test("A message over the limit is refused from its prefix while the client is still sending, and the connection goes on")
    func tooLargeMidStream() throws {
        let (_, client, service) = try Self.make(maxMessageBytes: 1000)
        let big = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(Array(repeating: 7, count: 50_000)), chunk: 100)
        try client.exchange()
        #expect(client.streams[big]?.grpcStatus == 8)
        #expect(client.streams[big]?.header("grpc-message")?.contains("larger than the limit of 1000") == true)
        let next = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([5]))
        try client.exchange()
        #expect(client.streams[next]?.data == H2TestClient.framed([5]))
        #expect(service.requests.count == 1)
    }

    @Test("An unsupported grpc-encoding is UNIMPLEMENTED and says what is accepted")
    func encoding() throws {
        let (_, client, _) = try Self.make()
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1], compressed: true),
                                    extraHeaders: [("grpc-encoding", "gzip")])
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 12)
        #expect(client.streams[id]?.header("grpc-accept-encoding") == "identity")
    }

    @Test("RST_STREAM from the client mid-message: the call never reaches the service, and the connection goes on")
    func resetMidMessage() throws {
        let (_, client, service) = try Self.make()
        let id = try client.request(path: "/test.Echo/Call", body: [0, 0, 0, 0, 100] + Array(repeating: 1, count: 40), chunk: 45)
        try client.exchange()
        client.session.submitReset(streamID: id, errorCode: 8)  // CANCEL
        try client.exchange()
        #expect(service.requests.isEmpty)
        let next = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([3]))
        try client.exchange()
        #expect(client.streams[next]?.grpcStatus == 0)
    }

    @Test("RST_STREAM after the call was dispatched turns its responder inactive; a late answer is dropped")
    func resetAfterDispatch() throws {
        let (channel, client, service) = try Self.make()
        service.behaviour = .hold
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        try client.exchange()
        let responder = try #require(service.held.first)
        #expect(responder.isActive)
        client.session.submitReset(streamID: id, errorCode: 8)
        try client.exchange()
        #expect(!responder.isActive)
        responder.succeed([1])  // must not crash or write
        channel.embeddedEventLoop.run()
        try client.exchange()
        #expect(client.streams[id]?.data.isEmpty == true)
        #expect(client.streams[id]?.closedWith == 8)
    }

    @Test("An answer that arrives after the connection closed and its handler is gone is dropped safely")
    func answerAfterClose() throws {
        let service = FakeService()
        service.behaviour = .hold
        do {
            let (channel, client, _) = try Self.make(service)
            _ = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
            try client.exchange()
            _ = try channel.finish(acceptAlreadyClosed: true)
        }
        // The channel, its pipeline and the client are gone; only the responder remains.
        let responder = try #require(service.held.first)
        #expect(!responder.isActive)
        responder.succeed([1])
        responder.fail(GRPCStatus(code: .unavailable, message: "late", exception: nil))
    }

    @Test("grpc-timeout: DEADLINE_EXCEEDED when the answer is late; the late answer is dropped")
    func deadline() throws {
        let (channel, client, service) = try Self.make()
        service.behaviour = .hold
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]), extraHeaders: [("grpc-timeout", "50m")])
        try client.exchange()
        let responder = try #require(service.held.first)
        channel.embeddedEventLoop.advanceTime(to: NIODeadline.now() + .seconds(1))
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 4)
        #expect(!responder.isActive)
        responder.succeed([1])
        try client.exchange()
        #expect(client.streams[id]?.data.isEmpty == true)
    }

    @Test("A malformed grpc-timeout is refused", arguments: ["5", "123456789S", "5s", "-1S", "S"])
    func badTimeout(_ value: String) throws {
        let (_, client, service) = try Self.make()
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]), extraHeaders: [("grpc-timeout", value)])
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 3)
        #expect(service.requests.isEmpty)
    }

    @Test("Status messages are percent-encoded and the exception travels as cs-exception")
    func statusMetadata() throws {
        let (_, client, service) = try Self.make()
        service.behaviour = .fail(GRPCStatus(code: .notFound, message: "no service: 7 % café\n", exception: "NotFoundException"))
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 5)
        #expect(client.streams[id]?.header("grpc-message") == "no service: 7 %25 caf%C3%A9%0A")
        #expect(client.streams[id]?.header("cs-exception") == "NotFoundException")
    }

    @Test("Drain: GOAWAY, the call in flight finishes, then the connection closes")
    func drain() throws {
        let (channel, client, service) = try Self.make()
        service.behaviour = .hold
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        try client.exchange()
        channel.pipeline.fireUserInboundEventTriggered(GRPCServerHandler.Drain())
        try client.exchange()
        #expect(channel.isActive, "still open while a call is in flight")
        service.held[0].succeed([2])
        channel.embeddedEventLoop.run()
        try client.exchange()
        #expect(client.streams[id]?.data == H2TestClient.framed([2]))
        #expect(client.streams[id]?.grpcStatus == 0)
        #expect(!channel.isActive)
    }

    @Test("A connection that does not start with the HTTP/2 preface is closed")
    func badPreface() throws {
        let (channel, _, _) = try Self.make()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}

@Suite("gRPC framing")
struct GRPCFramingTests {
    @Test("grpc-timeout units", arguments: [
        ("1H", TimeAmount.hours(1)), ("2M", .minutes(2)), ("3S", .seconds(3)), ("4m", .milliseconds(4)),
        ("5u", .microseconds(5)), ("6n", .nanoseconds(6)), ("99999999S", .seconds(99_999_999)),
    ])
    func timeouts(_ text: String, _ amount: TimeAmount) {
        #expect(GRPCFraming.parseTimeout(Array(text.utf8)) == amount)
    }

    @Test("A prefix that ends the input exactly is a partial message (fuzz: gateway/fuzz/regressions/grpc-web)")
    func prefixOnly() {
        // A whole message, then the 5-byte prefix of one that never comes: nothing is pending
        // in the buffer, yet the body is still owed.
        let stream = H2TestClient.framed([8, 1]) + [0, 0, 0, 0, 3]
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        let events = reader.feed(ByteBuffer(bytes: stream))
        #expect(events.count == 1)
        #expect(reader.hasPartialMessage)
        #expect(GRPCWeb.readMessage(ByteBuffer(bytes: stream), mode: .binary, maxMessageBytes: 1000) == .failure(.endedInsideMessage))
    }

    @Test("A message flag other than 0 and 1 is refused (fuzz: gateway/fuzz/regressions/grpc-web)", arguments: [UInt8(2), 0x20, 0x80])
    func badFlagAlone(_ flag: UInt8) {
        let stream: [UInt8] = [flag, 0, 0, 0, 0]
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        #expect(reader.feed(ByteBuffer(bytes: stream)) == [.badFlag(flag)])
        #expect(GRPCWeb.readMessage(ByteBuffer(bytes: stream), mode: .binary, maxMessageBytes: 1000) == .failure(.badCompressedFlag(flag)))
    }

    @Test("A reader fed any split returns the same messages")
    func splits() {
        let stream = H2TestClient.framed([1, 2, 3]) + H2TestClient.framed([]) + H2TestClient.framed(Array(repeating: 9, count: 300))
        for split in [1, 2, 5, 6, 7, 64, stream.count] {
            var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
            var messages: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let part = Array(stream[i..<min(i + split, stream.count)])
                for event in reader.feed(ByteBuffer(bytes: part)) {
                    if case .message(let m) = event { messages.append(Array(m.readableBytesView)) }
                }
                i += split
            }
            #expect(messages == [[1, 2, 3], [], Array(repeating: 9, count: 300)], "split \(split)")
            #expect(!reader.hasPartialMessage)
        }
    }

    @Test("A compressed flag other than 0 or 1 is malformed, not a message", arguments: [UInt8(2), 0x80, 0x81, 0xFF])
    func badFlag(_ flag: UInt8) {
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        var bytes = H2TestClient.framed([1, 2, 3])
        bytes[0] = flag
        let events = reader.feed(ByteBuffer(bytes: bytes))
        #expect(events == [.badFlag(flag)])
        // Spent: what follows is ignored.
        let after = reader.feed(ByteBuffer(bytes: H2TestClient.framed([4])))
        #expect(after == [])
    }

    @Test("Flag 1 is a compressed message")
    func compressedFlag() {
        var reader = GRPCMessageReader(maxMessageBytes: 1000, allocator: ByteBufferAllocator())
        var bytes = H2TestClient.framed([1])
        bytes[0] = 1
        let events = reader.feed(ByteBuffer(bytes: bytes))
        #expect(events == [.compressed])
    }
}
