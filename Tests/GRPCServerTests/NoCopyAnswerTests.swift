import ContextModel
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer
@testable import NGHTTP2

/// The way out without copies (gateway/bench/copies.md, R5 and R6): a server's DATA frames
/// are read with NGHTTP2_DATA_FLAG_NO_COPY and written, header then payload, straight from the
/// stream's body into the buffer `drainOutput` fills, under nghttp2's flow control.
@Suite("HTTP/2 answers: DATA payloads written once, from the body into the output")
struct NoCopyAnswerTests {
    /// A server session that answers every request with a body of the size its path names
    /// (`/<n>`), through `bodyChunk`/`writeBody`; it counts what went which way.
    final class BodyServer: NGHTTP2SessionDelegate {
        var session: NGHTTP2Session!
        var paths: [Int32: String] = [:]
        var bodies: [Int32: ByteBuffer] = [:]
        var copiedReads = 0
        var written = 0

        static func body(_ size: Int) -> [UInt8] { (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 8) } }

        func streamOpened(_ streamID: Int32) {}
        func settingsReceived(_ isAck: Bool) {}
        func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
            if String(decoding: name, as: UTF8.self) == ":path" { paths[streamID] = String(decoding: value, as: UTF8.self) }
        }
        func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {}
        func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {
            guard endStream, let path = paths[streamID], let size = Int(path.dropFirst()) else { return }
            bodies[streamID] = ByteBuffer(bytes: Self.body(size))
            try! session.submitHeaders(streamID: streamID, HeaderBlock([(":status", "200")]), hasBody: true)
        }
        func data(_ streamID: Int32, _ chunk: ByteBuffer) {}
        func dataEndedStream(_ streamID: Int32) {}
        func streamClosed(_ streamID: Int32, errorCode: UInt32) { bodies[streamID] = nil }
        func readBody(_ streamID: Int32, into: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
            copiedReads += 1
            return (0, true)
        }
        func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool) {
            let left = bodies[streamID]?.readableBytes ?? 0
            return (min(max, left), left <= max)
        }
        func writeBody(_ streamID: Int32, count: Int, into output: inout ByteBuffer) -> Bool {
            guard var body = bodies[streamID], let bytes = body.readSlice(length: count) else { return false }
            output.writeImmutableBuffer(bytes)
            bodies[streamID] = body
            written += count
            return true
        }
        func frameSent(_ streamID: Int32, endStream: Bool) {}
        func bodyComplete(_ streamID: Int32) -> Bool { false }  // the last DATA frame ends the stream
    }

    @Test("Bodies across frame and window boundaries arrive whole; the output limit holds; nothing is copied into nghttp2")
    func bodiesUnderFlowControl() throws {
        let server = BodyServer()
        server.session = try NGHTTP2Session(role: .server, delegate: server, settings: .defaults)
        // A client with small windows: the server must wait for its WINDOW_UPDATEs.
        var settings = HTTP2Settings()
        settings.initialWindowSize = 20_000
        settings.connectionWindowSize = 65_535
        let client = try H2TestClient(channel: EmbeddedChannel(), settings: settings)
        let sizes = [0, 1, 16_383, 16_384, 16_385, 70_000, 200_000]
        var ids: [Int32: Int] = [:]
        for size in sizes {
            ids[try client.request(path: "/\(size)", body: [], method: "GET", hasBody: false)] = size
        }
        let limit = 20_000
        var largestDrain = 0
        for _ in 0..<10_000 {
            var toServer = ByteBuffer()
            try client.session.drainOutput(into: &toServer)
            if toServer.readableBytes > 0 { try server.session.receive(toServer) }
            var toClient = ByteBuffer()
            try server.session.drainOutput(into: &toClient, limit: limit)
            largestDrain = max(largestDrain, toClient.readableBytes)
            if toClient.readableBytes > 0 { try client.session.receive(toClient) }
            if toServer.readableBytes == 0 && toClient.readableBytes == 0 { break }
        }
        for (id, size) in ids {
            let stream = try #require(client.streams[id])
            #expect(stream.header(":status") == "200", "size \(size)")
            #expect(stream.data.count == size, "size \(size)")
            #expect(stream.data == BodyServer.body(size), "size \(size)")
            #expect(stream.closedWith == 0, "size \(size)")
        }
        #expect(server.written == sizes.reduce(0, +), "every body byte went through writeBody")
        #expect(server.copiedReads == 0, "a server body was copied into nghttp2's frame buffer")
        // One frame past the limit at most (a DATA frame is 16 KiB and its header here).
        #expect(largestDrain <= limit + 16_384 + 9 + 200, "a drain of \(largestDrain) bytes")
    }

    @Test("gRPC answers of every size around a frame's arrive whole, then their trailers")
    func grpcAnswers() throws {
        let (_, client, _) = try GRPCServerHandlerTests.make()
        var ids: [Int32: [UInt8]] = [:]
        for size in [0, 1, 16_378, 16_379, 16_380, 16_384, 40_000, 300_000] {
            let message = BodyServer.body(size)
            ids[try client.request(path: "/test.Echo/Call", body: H2TestClient.framed(message))] = message
        }
        try client.exchange()
        for (id, message) in ids {
            let stream = try #require(client.streams[id])
            #expect(stream.data == H2TestClient.framed(message), "size \(message.count)")
            #expect(stream.trailer("grpc-status") == "0", "size \(message.count)")
            #expect(stream.closedWith == 0)
        }
    }
}
