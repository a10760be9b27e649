import ContextModel
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer

/// Bidirectional message streams (server reflection's shape): one response per request message,
/// the status in trailers when the client half-closes.
@Suite("gRPC message streams")
struct GRPCMessageStreamTests {
    @Test("Each request message of a stream gets its response, in order, then OK trailers at half-close")
    func severalMessages() throws {
        let (_, client, service) = try GRPCServerHandlerTests.make()
        client.byteByByte = true
        let messages: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 40_000)]
        let id = try client.request(path: "/test.Echo/Stream", body: messages.flatMap { H2TestClient.framed($0) }, chunk: 1000)
        try client.exchange()
        #expect(service.streamed == messages)
        #expect(service.requests.isEmpty, "not a unary call")
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "200")
        #expect(stream.header("grpc-status") == nil, "not trailers-only")
        #expect(stream.data == messages.flatMap { H2TestClient.framed($0) })
        #expect(stream.trailer("grpc-status") == "0")
        #expect(stream.closedWith == 0)
    }

    @Test("A stream with no message ends OK, trailers-only")
    func empty() throws {
        let (_, client, _) = try GRPCServerHandlerTests.make()
        let id = try client.request(path: "/test.Echo/Stream", body: [])
        try client.exchange()
        let stream = try #require(client.streams[id])
        #expect(stream.header("grpc-status") == "0")
        #expect(stream.data.isEmpty)
    }

    @Test("A failing message ends the stream with its status in trailers, after the answers before it")
    func failureAfterAnswers() throws {
        let (_, client, service) = try GRPCServerHandlerTests.make()
        let id = try client.request(path: "/test.Echo/Stream",
                                    body: [[1], [0xFF], [2]].flatMap { H2TestClient.framed($0) })
        try client.exchange()
        #expect(service.streamed == [[1], [0xFF]], "nothing read after the failure")
        let stream = try #require(client.streams[id])
        #expect(stream.data == H2TestClient.framed([1]))
        #expect(stream.trailer("grpc-status") == "5")
        #expect(stream.trailer("grpc-message") == "no such thing")
    }

    @Test("A stream ending inside a message is INTERNAL, after the answers before it")
    func endedInsideMessage() throws {
        let (_, client, _) = try GRPCServerHandlerTests.make()
        let id = try client.request(path: "/test.Echo/Stream",
                                    body: H2TestClient.framed([1]) + Array(H2TestClient.framed([1, 2, 3]).prefix(6)))
        try client.exchange()
        let stream = try #require(client.streams[id])
        #expect(stream.data == H2TestClient.framed([1]))
        #expect(stream.trailer("grpc-status") == "13")
    }

    @Test("The next message sent only once the previous one is answered (grpcurl's way): the deferred response body resumes")
    func nextMessageAfterAnswer() throws {
        // The server's body is empty after the first answer went out: nghttp2 defers it
        // (`readBody` said "later"), and only `resumeBody` sends the second answer.
        let (_, client, service) = try GRPCServerHandlerTests.make()
        let id = try client.request(path: "/test.Echo/Stream", body: H2TestClient.framed([1]), keepOpen: true)
        try client.exchange()
        #expect(client.streams[id]?.data == H2TestClient.framed([1]))
        #expect(client.streams[id]?.closedWith == nil, "the stream stays open")
        client.send(H2TestClient.framed([2, 2]), on: id)
        try client.exchange()
        #expect(service.streamed == [[1], [2, 2]])
        #expect(client.streams[id]?.data == H2TestClient.framed([1]) + H2TestClient.framed([2, 2]))
        #expect(client.streams[id]?.trailer("grpc-status") == nil)
        client.send([], on: id, end: true)
        try client.exchange()
        let stream = try #require(client.streams[id])
        #expect(stream.trailer("grpc-status") == "0")
        #expect(stream.closedWith == 0)
    }
}
