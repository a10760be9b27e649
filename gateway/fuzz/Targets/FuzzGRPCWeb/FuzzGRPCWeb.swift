// gRPC-Web framing (`GRPCWeb`, `Base64`, `GRPCMessageReader`), fed an arbitrary request body:
// browsers reach it through any HTTP exchange, HTTP/1.1 or HTTP/2.
//
// Input: byte 0 picks the mode (binary or text) and the message size limit, the rest is the
// request body.
//
// Invariants, beyond "no trap":
// - base64: decode(encode(x)) == x for any bytes; a text that decodes, with padding only in
//   its last quad, is exactly encode(decoded);
// - the text mode reads base64(b) exactly as the binary mode reads b;
// - a message read is exactly the body's one frame: [0, len32, message], len ≤ the limit;
// - the message reader fed the body in small pieces gives the same events as fed whole;
// - `GRPCWeb.serve` always answers 200 with one trailer frame (after one message frame on
//   success) whose first line is a grpc-status, base64 in text mode.
import ContextModel
import FuzzSupport
@testable import GRPCServer
import HTTPServing
import NIOCore
import NIOEmbedded

@main enum Main {
    static func main() { runFuzzer(fuzz) }
}

private let limits = [4 << 20, 16]
private let loop = EmbeddedEventLoop()

/// Echoes the message of /test.Echo/Call; refuses /test.Echo/Fail.
private struct EchoService: GRPCService {
    func serves(path: String) -> Bool { path.hasPrefix("/test.Echo/") }
    func handle(_ request: GRPCRequest, call responder: GRPCCall, eventLoop: any EventLoop) {
        if request.path == "/test.Echo/Fail" {
            responder.fail(GRPCStatus(code: .invalidArgument, message: "no\r\nway %", exception: "ValidationException"))
        } else {
            responder.succeed(GRPCResponseMessage(request.message.readableBytesView))
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = bytes(data, size)
    guard let selector = input.first else { return 0 }
    let body = Array(input.dropFirst())
    let mode: GRPCWeb.Mode = selector & 1 == 0 ? .binary : .text
    let limit = limits[Int(selector >> 1) & 1]

    checkBase64(body)
    let binary = GRPCWeb.readMessage(ByteBuffer(bytes: body), mode: .binary, maxMessageBytes: limit)
    if case .success(let message) = binary {
        let m = Array(message.readableBytesView)
        check(m.count <= limit, "a \(m.count)-byte message over the \(limit) limit")
        let n = UInt32(m.count)
        let prefix: [UInt8] = [0, UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
        check(body == prefix + m,
              "the message read is not the body's only frame: \(show(body))")
    }
    check(GRPCWeb.readMessage(ByteBuffer(bytes: Base64.encode(body)), mode: .text, maxMessageBytes: limit) == binary,
          "text mode reads base64(b) differently from binary b: \(show(body))")
    checkPieces(body, limit: limit, chunking: selector >> 2)
    checkServe(body, mode: mode, limit: limit, path: selector & 0x80 == 0 ? "/test.Echo/Call" : "/test.Echo/Fail")
    return 0
}

private func checkBase64(_ b: [UInt8]) {
    let encoded = Base64.encode(b)
    check(Base64.decode(encoded) == b, "base64 does not round-trip: \(show(b))")
    guard let decoded = Base64.decode(b) else { return }
    check(decoded.count <= b.count / 4 * 3, "base64 decoded to more bytes than it can hold")
    let pad = UInt8(ascii: "=")
    if !b.dropLast(4).contains(pad) {
        check(Base64.encode(decoded) == b, "base64 text decodes but is not the encoding of its bytes: \(show(b))")
    }
}

/// The reader fed in pieces of 1...8 bytes (sizes from the selector) sees what it sees fed whole.
private func checkPieces(_ body: [UInt8], limit: Int, chunking: UInt8) {
    var whole = GRPCMessageReader(maxMessageBytes: limit, allocator: ByteBufferAllocator())
    let expected = whole.feed(ByteBuffer(bytes: body))
    var pieces = GRPCMessageReader(maxMessageBytes: limit, allocator: ByteBufferAllocator())
    var events: [GRPCMessageReader.Event] = []
    var i = 0
    var step = Int(chunking % 8) + 1
    while i < body.count {
        let end = min(body.count, i + step)
        events += pieces.feed(ByteBuffer(bytes: body[i..<end]))
        i = end
        step = step % 8 + 1
    }
    check(events == expected, "the message reader gives other events fed in pieces: \(show(body)): \(events) vs \(expected)")
    check(pieces.hasPartialMessage == whole.hasPartialMessage, "hasPartialMessage differs fed in pieces: \(show(body))")
}

private func checkServe(_ body: [UInt8], mode: GRPCWeb.Mode, limit: Int, path: String) {
    let request = RESTRequest(method: "POST", target: path, contentType: mode.contentType, body: body)
    let future = GRPCWeb.serve(request, mode: mode, service: EchoService(), eventLoop: loop, maxMessageBytes: limit)
    loop.run()
    let response: RESTResponse
    do {
        response = try future.wait()
    } catch {
        fatalError("serve failed its future: \(error)")
    }
    check(response.status == 200, "gRPC-Web answered \(response.status)")
    var answer = response.bodyBytes
    if mode == .text {
        guard let decoded = Base64.decode(answer) else { fatalError("the text answer is not base64: \(show(answer))") }
        answer = decoded
    }
    // Frames: [flag, len32, payload]…; the last is the trailer frame (flag 0x80).
    var frames: [(UInt8, [UInt8])] = []
    var i = 0
    while i < answer.count {
        check(answer.count - i >= 5, "a truncated frame prefix in the answer")
        let n = answer[(i + 1)...(i + 4)].reduce(0) { $0 << 8 | Int($1) }
        check(answer.count - i - 5 >= n, "a truncated frame in the answer")
        frames.append((answer[i], Array(answer[(i + 5)..<(i + 5 + n)])))
        i += 5 + n
    }
    check((1...2).contains(frames.count) && frames.last!.0 == 0x80 && frames.dropLast().allSatisfy { $0.0 == 0 },
          "the answer is not [message] trailers: \(frames.map(\.0))")
    let trailers = String(decoding: frames.last!.1, as: UTF8.self)
    check(trailers.hasPrefix("grpc-status:") && trailers.hasSuffix("\r\n"), "trailer frame \(trailers.debugDescription)")
    let lines = trailers.split(separator: "\r\n", omittingEmptySubsequences: false).dropLast()
    check(lines.allSatisfy { $0.contains(":") && !$0.contains("\n") && !$0.contains("\r") },
          "a trailer line breaks the frame: \(trailers.debugDescription)")
    if frames.count == 2 {
        check(trailers == "grpc-status:0\r\n", "a message frame with a failure: \(trailers.debugDescription)")
        if case .success(let m) = GRPCWeb.readMessage(ByteBuffer(bytes: body), mode: mode, maxMessageBytes: limit) {
            check(frames[0].1 == Array(m.readableBytesView), "the echo is not the message")
        } else {
            fatalError("a message answered for a body that does not read")
        }
    }
}
