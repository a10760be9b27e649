import ContextModel
import HTTPServing
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import GRPCServer

/// Requests that are not native gRPC, on the same HTTP/2 connection, with a `RESTResponder`:
/// collected whole and answered as plain HTTP (REST, gRPC-Web, health).
@Suite("Plain HTTP exchanges on the gRPC connection")
struct HTTPExchangeTests {
    final class FakeREST: RESTResponder, @unchecked Sendable {
        // Only touched on the embedded event loop.
        var requests: [RESTRequest] = []
        var answer = RESTResponse(status: 201, location: "/x/1", body: Array(#"{"task_id":1}"#.utf8))
        var limit = 1024

        func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse) {
            (limit, RESTResponse(.payloadTooLarge(limit: limit)))
        }

        func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
            requests.append(request)
            return eventLoop.makeSucceededFuture(answer)
        }
    }

    static func make() throws -> (EmbeddedChannel, H2TestClient, FakeService, FakeREST) {
        let service = FakeService(), rest = FakeREST()
        let channel = EmbeddedChannel(handler: GRPCServerHandler(service: service, rest: rest))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, try H2TestClient(channel: channel), service, rest)
    }

    @Test("A REST request split over DATA frames reaches the responder whole, with its headers; the answer ends with the body, no trailers")
    func restRequest() throws {
        let (_, client, service, rest) = try Self.make()
        let body = Array(#"{"task_type":"customer info","pad":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: 500)
            + Array(#""}"#.utf8)
        let id = try client.request(path: "/genesys/1/cs/services/7/tasks/start?x=1", body: body, contentType: "application/json",
                                    extraHeaders: [("contactcenterid", "acme"), ("authorization", "Bearer t"),
                                                   ("x-custom", "yes"), ("grpc-timeout", "2S")],
                                    chunk: 100)
        try client.exchange()
        #expect(service.requests.isEmpty)
        let request = try #require(rest.requests.first)
        #expect(request.method == "POST")
        #expect(request.target == "/genesys/1/cs/services/7/tasks/start?x=1")
        #expect(request.body == ByteBuffer(bytes: body))
        #expect(request.contentType == "application/json")
        #expect(request.tenant == "acme")
        #expect(request.authorization == "Bearer t")
        #expect(request.headers.first(name: "x-custom") == "yes")
        #expect(request.headers.first(name: "grpc-timeout") == "2S")
        #expect(request.headers.first(name: "te") == nil, "what gRPC clients always send is not kept")
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "201")
        #expect(stream.header("location") == "/x/1")
        #expect(stream.header("content-type") == "application/json")
        #expect(stream.header("content-length") == "13")
        #expect(stream.data == Array(#"{"task_id":1}"#.utf8))
        #expect(stream.trailers.isEmpty)
        #expect(stream.closedWith == 0)
    }

    @Test("A GET without a body, answered 204 with no body: one HEADERS frame ends the stream")
    func getWithoutBody() throws {
        let (_, client, _, rest) = try Self.make()
        rest.answer = RESTResponse(status: 204)
        let id = try client.request(path: "/healthz", body: [], contentType: nil, method: "GET", hasBody: false)
        try client.exchange()
        #expect(rest.requests.first?.method == "GET")
        #expect(rest.requests.first?.body.readableBytes == 0)
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "204")
        #expect(stream.data.isEmpty)
        #expect(stream.closedWith == 0)
    }

    @Test("A body over the responder's limit is refused with its 413 as soon as it passes the limit; nothing is dispatched")
    func tooLarge() throws {
        let (_, client, _, rest) = try Self.make()
        rest.limit = 300
        let id = try client.request(path: "/genesys/1/cs/services/start", body: Array(repeating: 0x20, count: 5000),
                                    contentType: "application/json", chunk: 200)
        try client.exchange()
        #expect(rest.requests.isEmpty)
        let stream = try #require(client.streams[id])
        #expect(stream.header(":status") == "413")
        #expect(String(decoding: stream.data, as: UTF8.self).contains("PayloadTooLargeException"))
    }

    @Test("Native gRPC still goes to the gRPC service, with trailers, on the same connection")
    func grpcBeside() throws {
        let (_, client, service, rest) = try Self.make()
        let grpc = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1, 2, 3]))
        let plain = try client.request(path: "/genesys/1/cs/services/1", body: [], contentType: nil, method: "GET", hasBody: false)
        try client.exchange()
        #expect(service.requests.count == 1)
        #expect(rest.requests.count == 1)
        #expect(client.streams[grpc]?.trailer("grpc-status") == "0")
        #expect(client.streams[plain]?.header(":status") == "201")
    }
}
