import ContextModel
import Testing
@testable import Gateway

@Suite("Upstream answers")
struct UpstreamResponseTests {
    @Test("The core's error body becomes the contract's error; anything else keeps the status")
    func contextError() {
        let body = Array(#"{"message":"There are no service found for : 7","exception":"NotFoundException"}"#.utf8)
        #expect(UpstreamResponse(status: 404, location: nil, body: body).contextError
                == .notFound("There are no service found for : 7"))
        let html = UpstreamResponse(status: 502, location: nil, body: Array("<html>bad gateway</html>".utf8))
        #expect(html.contextError == ContextError(status: 502, exception: "InternalException", message: "the task core answered HTTP 502"))
        let partial = UpstreamResponse(status: 409, location: nil, body: Array(#"{"message":"x"}"#.utf8))
        #expect(partial.contextError.status == 409)
        #expect(partial.contextError.message == "the task core answered HTTP 409")
    }
}
