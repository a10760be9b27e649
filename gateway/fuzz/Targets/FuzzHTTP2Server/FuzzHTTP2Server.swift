// The HTTP/2 server handler (`GRPCServerHandler`, nghttp2 underneath) fed raw bytes on NIO's
// `EmbeddedChannel`, as a client on the socket would send them. The client preface and an
// empty SETTINGS frame come first, so every input starts at frames.
//
// Input: byte 0 picks how the bytes arrive and what answers them (bits 0-1: read sizes, whole
// / 1 / 13 / 1000 bytes; bit 2: the gRPC service holds its calls and answers after the reads;
// bit 3: a REST responder is there (plain HTTP exchanges); bit 4: a drain (GOAWAY) starts
// after the reads). The rest are the client's bytes.
//
// Invariants, beyond "no trap":
// - the answer is bounded by the input: at most 16 KiB plus 64 bytes per input byte;
// - the calls that reach the service and the REST responder are bounded by the frames sent,
//   and so are the header bytes handed to them;
// - the channel either stays open or closes by itself cleanly; closing it then works, and
//   afterwards no call is active (held responders answer into nothing without a trap);
// - once the channel is gone, nothing keeps the handler alive (no retain cycle).
import ContextModel
import FuzzSupport
@testable import GRPCServer
import HTTPServing
import NIOCore
import NIOEmbedded

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

private let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
private let readSizes = [Int.max, 1, 13, 1000]

/// Records calls; echoes at once or holds them.
private final class Service: GRPCService, @unchecked Sendable {
    // Only touched on the embedded event loop (this thread).
    var hold = false
    var held: [GRPCCall] = []
    var calls = 0
    var headerBytes = 0

    func serves(path: String) -> Bool { path.hasPrefix("/test.Echo/") }

    func handle(_ request: GRPCRequest, call responder: GRPCCall, eventLoop: any EventLoop) {
        calls += 1
        headerBytes += request.path.utf8.count + (request.tenant?.utf8.count ?? 0) + (request.authorization?.utf8.count ?? 0)
        if request.path == "/test.Echo/Fail" {
            responder.fail(GRPCStatus(code: .notFound, message: "no such task\n%", exception: "NotFoundException"))
        } else if hold {
            held.append(responder)
        } else {
            responder.succeed(GRPCResponseMessage(request.message.readableBytesView))
        }
    }
}

private final class REST: RESTResponder, @unchecked Sendable {
    var calls = 0
    var headerBytes = 0

    func bodyLimit(method: String, target: String) -> (limit: Int, tooLarge: RESTResponse) {
        (256, RESTResponse(.payloadTooLarge(limit: 256)))
    }

    func respond(to request: RESTRequest, eventLoop: any EventLoop) -> EventLoopFuture<RESTResponse> {
        calls += 1
        headerBytes += request.target.utf8.count
        for h in request.headers { headerBytes += h.name.utf8.count + h.value.utf8.count }
        return eventLoop.makeSucceededFuture(RESTResponse(status: 200, body: request.body, contentType: request.contentType))
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    guard let selector = input.first else { return 0 }
    let wire = preface + input.dropFirst()
    weak var weakHandler: GRPCServerHandler?
    do {
        let service = Service()
        service.hold = selector & 4 != 0
        let rest = selector & 8 != 0 ? REST() : nil
        var config = GRPCServerHandler.Configuration()
        config.maxMessageBytes = 1024
        let handler = GRPCServerHandler(service: service, rest: rest, configuration: config)
        weakHandler = handler
        run(wire, selector: selector, handler: handler, service: service, rest: rest)
    }
    check(weakHandler == nil, "the handler outlives its channel (a retain cycle)")
    return 0
}

private func run(_ wire: [UInt8], selector: UInt8, handler: GRPCServerHandler, service: Service, rest: REST?) {
    let channel = EmbeddedChannel(handler: handler)
    let loop = channel.embeddedEventLoop
    do {
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    } catch {
        fatalError("connect: \(error)")
    }
    var written = 0
    func drainOutput() {
        while let out = try? channel.readOutbound(as: ByteBuffer.self) { written += out.readableBytes }
    }

    let step = readSizes[Int(selector & 3)]
    var i = 0
    while i < wire.count && channel.isActive {
        let end = wire.count - i <= step ? wire.count : i + step
        var buffer = channel.allocator.buffer(capacity: end - i)
        buffer.writeBytes(wire[i..<end])
        do {
            try channel.writeInbound(buffer)
        } catch {
            fatalError("an error reached the end of the pipeline: \(error)")
        }
        channel.pipeline.fireChannelReadComplete()
        loop.run()
        drainOutput()
        i = end
    }
    if selector & 16 != 0 && channel.isActive {
        channel.pipeline.fireUserInboundEventTriggered(GRPCServerHandler.Drain())
        loop.run()
    }
    // Held calls answered between reads, as upstream answers arrive; then every deadline fires.
    for (k, responder) in service.held.enumerated() {
        if k % 2 == 0 { responder.succeed([1, 2, 3]) } else { responder.fail(GRPCStatus(code: .unavailable, message: "x")) }
    }
    loop.run()
    loop.advanceTime(to: .now() + .hours(24))  // deadlines are on the real clock
    drainOutput()

    let frames = wire.count / 9 + 1
    check(written <= 16_384 + 64 * wire.count, "\(written) bytes answered \(wire.count) bytes")
    check(service.calls + (rest?.calls ?? 0) <= frames, "\(service.calls) calls from \(wire.count) bytes")
    check(service.headerBytes + (rest?.headerBytes ?? 0) <= 16_384 + 64 * wire.count,
          "\(service.headerBytes + (rest?.headerBytes ?? 0)) header bytes handed on from \(wire.count) bytes")

    if channel.isActive {
        do {
            try channel.close().wait()
        } catch {
            fatalError("closing an open channel failed: \(error)")
        }
    }
    loop.run()
    for responder in service.held {
        check(!responder.isActive, "a call is still active on a closed channel")
        responder.succeed([9])  // into nothing
    }
    // The responders hold the handler (their sink) and the handler holds this service: let go,
    // as the real service does once a call is answered.
    service.held.removeAll()
    loop.run()
    drainOutput()
    _ = try? channel.finish()
}
