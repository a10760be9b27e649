import ContextModel
import NIOCore
import NIOEmbedded
@testable import GRPCServer
@testable import NGHTTP2

/// A real nghttp2 client session wired to a `GRPCServerHandler` on an `EmbeddedChannel`:
/// every byte the client produces is fed to the server (one byte per read when asked), and
/// everything the server writes goes back to the client. No sockets, no sleeps.
final class H2TestClient: NGHTTP2SessionDelegate {
    struct StreamRecord {
        var headers: [(String, String)] = []
        var data: [UInt8] = []
        var trailers: [(String, String)] = []
        var closedWith: UInt32?
        /// Request body still to send, and the size of each DATA chunk.
        var pendingBody: [UInt8] = []
        var chunk = 16_384
        /// Not ended once `pendingBody` is out: more may follow (`send(_:on:end:)`).
        var keepOpen = false

        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        func trailer(_ name: String) -> String? { trailers.first { $0.0 == name }?.1 }
        /// grpc-status from the trailers, or from the headers of a trailers-only response.
        var grpcStatus: Int? { (trailer("grpc-status") ?? header("grpc-status")).flatMap { Int($0) } }
    }

    var session: NGHTTP2Session!
    let channel: EmbeddedChannel
    var streams: [Int32: StreamRecord] = [:]
    var byteByByte = false

    /// `settings`: the client's own (e.g. a zero window with manual updates: a client that
    /// never takes the answers' bytes).
    init(channel: EmbeddedChannel, settings: HTTP2Settings = .defaults) throws {
        self.channel = channel
        session = try NGHTTP2Session(role: .client, delegate: self, settings: settings)
    }

    /// Starts a gRPC request; the body is sent in DATA frames of `chunk` bytes.
    @discardableResult
    func request(path: String, body: [UInt8], contentType: String? = "application/grpc", method: String = "POST",
                 extraHeaders: [(String, String)] = [], chunk: Int = 16_384, hasBody: Bool = true,
                 keepOpen: Bool = false) throws -> Int32 {
        var headers = HeaderBlock()
        let type = contentType.map { [("content-type", $0)] } ?? []
        for (n, v) in [(":method", method), (":scheme", "http"), (":path", path), (":authority", "test")] + type
            + [("te", "trailers")] + extraHeaders {
            headers.add(n, v)
        }
        let id = try session.submitHeaders(streamID: -1, headers, hasBody: hasBody)
        var record = StreamRecord()
        record.pendingBody = body
        record.chunk = chunk
        record.keepOpen = keepOpen
        streams[id] = record
        return id
    }

    /// More request body on a stream started with `keepOpen`; `end`: the last of it.
    func send(_ bytes: [UInt8], on id: Int32, end: Bool = false) {
        streams[id]?.pendingBody += bytes
        if end { streams[id]?.keepOpen = false }
        session.resumeBody(streamID: id)
    }

    /// A gRPC length-prefixed message.
    static func framed(_ message: [UInt8], compressed: Bool = false) -> [UInt8] {
        let n = UInt32(message.count)
        return [compressed ? 1 : 0, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] + message
    }

    /// Moves bytes both ways until neither side has anything left to say.
    func exchange() throws {
        for _ in 0..<10_000 {
            var out = ByteBufferAllocator().buffer(capacity: 0)
            try session.drainOutput(into: &out)
            var moved = out.readableBytes > 0
            if moved {
                if byteByByte {
                    while let byte = out.readSlice(length: 1) { try channel.writeInbound(byte) }
                } else {
                    try channel.writeInbound(out)
                }
                channel.pipeline.fireChannelReadComplete()
            }
            channel.embeddedEventLoop.run()
            while let reply = try channel.readOutbound(as: ByteBuffer.self) {
                moved = true
                try session.receive(reply)
            }
            if !moved { return }
        }
    }

    // MARK: NGHTTP2SessionDelegate

    func streamOpened(_ streamID: Int32) {}

    func header(_ streamID: Int32, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, isTrailer: Bool) {
        let pair = (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self))
        if isTrailer { streams[streamID]?.trailers.append(pair) } else { streams[streamID]?.headers.append(pair) }
    }

    func headersComplete(_ streamID: Int32, isTrailer: Bool, endStream: Bool) {}

    func headerBlockRefused(_ streamID: Int32, connectionEnding: Bool) {}

    func settingsReceived(_ isAck: Bool) {}

    func data(_ streamID: Int32, _ chunk: ByteBuffer) {
        streams[streamID]?.data.append(contentsOf: chunk.readableBytesView)
    }

    func dataEndedStream(_ streamID: Int32) {}

    func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        streams[streamID]?.closedWith = errorCode
    }

    func readBody(_ streamID: Int32, into buffer: UnsafeMutableRawBufferPointer) -> (count: Int, done: Bool) {
        guard var record = streams[streamID] else { return (0, true) }
        let n = min(buffer.count, record.chunk, record.pendingBody.count)
        if n > 0 { record.pendingBody.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) } }
        record.pendingBody.removeFirst(n)
        streams[streamID] = record
        // Nothing yet on a stream kept open: nghttp2 defers its body until `send` resumes it.
        return (n, record.pendingBody.isEmpty && !record.keepOpen)
    }

    func bodyComplete(_ streamID: Int32) -> Bool { false }

    // A client's request bodies are copied (`readBody`): never called for a client.
    func bodyChunk(_ streamID: Int32, max: Int) -> (count: Int, done: Bool) { (0, true) }
    func writeBody(_ streamID: Int32, count: Int, into output: inout ByteBuffer) -> Bool { false }

    func frameSent(_ streamID: Int32, endStream: Bool) {}
}

/// A service that records calls and answers as told.
final class FakeService: GRPCService, @unchecked Sendable {
    // Only touched on the embedded event loop.
    enum Behaviour { case echo, hold, fail(GRPCStatus) }
    var behaviour = Behaviour.echo
    var requests: [GRPCRequest] = []
    var held: [GRPCCall] = []

    func serves(path: String) -> Bool { path.hasPrefix("/test.Echo/") || path == Self.healthPath }

    /// Answered at once, whatever the behaviour, and without an admission slot (as the
    /// gateway's health check).
    static let healthPath = "/grpc.health.v1.Health/Check"
    func needsAdmission(path: String) -> Bool { path != Self.healthPath }

    func handle(_ request: GRPCRequest, call responder: GRPCCall, eventLoop: any EventLoop) {
        if request.path == Self.healthPath { return responder.succeed([8, 1]) }
        requests.append(request)
        switch behaviour {
        case .echo: responder.succeed(GRPCResponseMessage(request.message.readableBytesView))
        case .hold: held.append(responder)
        case .fail(let status): responder.fail(status)
        }
    }

    /// `/test.Echo/Stream` is a message stream: each message echoed, one starting 0xFF fails it.
    var streamed: [[UInt8]] = []

    func isMessageStream(path: String) -> Bool { path == "/test.Echo/Stream" }

    func respond(toStreamMessage message: ByteBuffer, path: String) -> Result<GRPCResponseMessage, GRPCStatus> {
        let bytes = Array(message.readableBytesView)
        streamed.append(bytes)
        if bytes.first == 0xFF { return .failure(GRPCStatus(code: .notFound, message: "no such thing", exception: nil)) }
        return .success(GRPCResponseMessage(bytes))
    }
}
