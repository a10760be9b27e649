import ContextModel
import HTTPServing
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer

@Suite("gRPC-Web framing")
struct GRPCWebTests {
    @Test("base64 round-trips every length, and decodes what RFC 4648 gives")
    func base64() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        // RFC 4648 §10 test vectors.
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
                                 ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            #expect(Base64.encode(Array(plain.utf8)) == Array(encoded.utf8))
        }
        // Padded chunks one after another (PROTOCOL-WEB.md).
        #expect(Base64.decode(Array("Zg==Zm8=".utf8)) == Array("ffo".utf8))
        for bad in ["Zg=", "Z===", "Zh==", "Zm9*", "Zg==Z", "=Zg="] {
            #expect(Base64.decode(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test("The answer body: the message frame, then the trailers as a frame of their own")
    func responseBody() {
        let ok = GRPCWeb.responseBody(.success([7, 8, 9]), mode: .binary)
        let trailer = Array("grpc-status:0\r\n".utf8)
        #expect(ok == [0, 0, 0, 0, 3, 7, 8, 9, 0x80, 0, 0, 0, UInt8(trailer.count)] + trailer)
        let failed = GRPCWeb.responseBody(.failure(GRPCStatus(code: .notFound, message: "no such thing: 5%",
                                                              exception: "NotFoundException")), mode: .binary)
        let text = Array("grpc-status:5\r\ngrpc-message:no such thing: 5%25\r\ncs-exception:NotFoundException\r\n".utf8)
        #expect(failed == [0x80, 0, 0, 0, UInt8(text.count)] + text)
        #expect(GRPCWeb.responseBody(.success([7, 8, 9]), mode: .text) == Base64.encode(ok))
    }

    @Test("Content types: protobuf codecs only")
    func classify() {
        func mode(_ type: String?) -> GRPCWeb.Mode? {
            if case .call(let mode) = GRPCWeb.classify(contentType: type) { return mode }
            return nil
        }
        #expect(mode("application/grpc-web") == .binary)
        #expect(mode("application/grpc-web+proto") == .binary)
        #expect(mode("Application/gRPC-Web-Text; charset=x") == .text)
        #expect(mode("application/grpc-web-text+proto") == .text)
        if case .unsupported(let answer) = GRPCWeb.classify(contentType: "application/grpc-web+json") {
            #expect(answer.status == 415)
        } else {
            Issue.record("grpc-web+json is gRPC-Web with a codec we do not serve")
        }
        #expect(GRPCWeb.classify(contentType: "application/grpc") == nil)
        #expect(GRPCWeb.classify(contentType: "application/json") == nil)
        #expect(GRPCWeb.classify(contentType: nil) == nil)
    }

    @Test("A call through the service: the responder's answer becomes one 200 with both frames; a deadline answers DEADLINE_EXCEEDED")
    func serve() throws {
        let loop = EmbeddedEventLoop()
        let service = FakeService()
        let request = RESTRequest(method: "POST", target: "/test.Echo/Call", contentType: "application/grpc-web",
                                  tenant: "t", body: H2TestClient.framed([1, 2]))
        // An embedded loop's futures are read by callback, not `wait()` (that blocks the loop).
        final class Box: @unchecked Sendable { var value: RESTResponse? }
        func result(_ future: EventLoopFuture<RESTResponse>) throws -> RESTResponse {
            let got = Box()
            future.whenSuccess { got.value = $0 }
            loop.run()
            return try #require(got.value)
        }
        let answer = try result(GRPCWeb.serve(request, mode: .binary, service: service, eventLoop: loop, maxMessageBytes: 100))
        #expect(answer.status == 200)
        #expect(answer.contentType == "application/grpc-web+proto")
        #expect(answer.bodyBytes == GRPCWeb.responseBody(.success([1, 2]), mode: .binary))
        #expect(service.requests.first?.tenant == "t")

        service.behaviour = .hold
        var timed = request
        timed.headers.add(name: "grpc-timeout", value: "100m")
        let pending = GRPCWeb.serve(timed, mode: .binary, service: service, eventLoop: loop, maxMessageBytes: 100)
        let early = Box()
        pending.whenSuccess { early.value = $0 }
        loop.run()
        #expect(early.value == nil, "held: no answer before the deadline")
        // The deadline is wall-clock time (`NIODeadline.now()`); the embedded loop's clock starts at 0.
        loop.advanceTime(to: .now() + .milliseconds(150))
        let late = try result(pending)
        #expect(late.bodyBytes == GRPCWeb.responseBody(.failure(GRPCStatus(code: .deadlineExceeded, message: "deadline exceeded",
                                                                      exception: nil)), mode: .binary))
        service.held.first?.succeed([9])  // too late: ignored
        #expect(service.held.first?.isActive == false)
    }

    @Test("A message over the limit is RESOURCE_EXHAUSTED before it is read")
    func tooLarge() {
        guard case .failure(let status) = GRPCWeb.readMessage(ByteBuffer(bytes: H2TestClient.framed(Array(repeating: 1, count: 101))), mode: .binary,
                                                                maxMessageBytes: 100) else {
            Issue.record("accepted")
            return
        }
        #expect(status.code == .resourceExhausted)
    }

    @Test("gRPC-Web's own GRPCCall: its deadline, the cancel hook at the deadline (once), only the first answer counts")
    func callHandle() throws {
        let loop = EmbeddedEventLoop()
        let service = FakeService()
        service.behaviour = .hold
        var request = RESTRequest(method: "POST", target: "/test.Echo/Call", contentType: "application/grpc-web",
                                  tenant: "t", body: H2TestClient.framed([1]))
        request.headers.add(name: "grpc-timeout", value: "100m")
        final class Box: @unchecked Sendable { var value: RESTResponse?; var answers = 0; var cancels = 0 }
        let box = Box()
        GRPCWeb.serve(request, mode: .binary, service: service, eventLoop: loop, maxMessageBytes: 100).whenSuccess {
            box.value = $0
            box.answers += 1
        }
        loop.run()
        let call = try #require(service.held.first)
        #expect(call.isActive)
        #expect(call.deadline != nil)
        call.onCancel { box.cancels += 1 }
        loop.advanceTime(to: .now() + .milliseconds(150))
        #expect(box.cancels == 1)
        #expect(box.answers == 1)
        #expect(!call.isActive)
        call.succeed([2])
        call.fail(.secondMessage)
        loop.run()
        #expect(box.answers == 1, "the promise is completed once")
        #expect(box.cancels == 1)

        // Answered first: the deadline then runs no cancel hook and sends nothing more. (A new
        // loop: the first one's clock is already past this call's wall-clock deadline.)
        let loop2 = EmbeddedEventLoop()
        let answered = Box()
        GRPCWeb.serve(request, mode: .binary, service: service, eventLoop: loop2, maxMessageBytes: 100).whenSuccess {
            answered.value = $0
            answered.answers += 1
        }
        loop2.run()
        let second = try #require(service.held.last)
        second.onCancel { answered.cancels += 1 }
        second.succeed([3])
        second.succeed([4])
        loop2.advanceTime(to: .now() + .milliseconds(300))
        #expect(answered.answers == 1)
        #expect(answered.cancels == 0)
        #expect(answered.value?.bodyBytes == GRPCWeb.responseBody(.success([3]), mode: .binary))
    }
}
