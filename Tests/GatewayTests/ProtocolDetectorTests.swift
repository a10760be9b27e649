import NIOCore
import Testing
@testable import Gateway
@testable import GatewayHTTP

@Suite("One port: protocol detection")
struct ProtocolDetectorTests {
    @Test("The HTTP/2 preface in any split is HTTP/2; anything that strays from it is HTTP/1.1 at the first differing byte")
    func classify() {
        let preface = ProtocolDetector.preface
        for n in 0..<preface.count {
            #expect(ProtocolDetector.classify(preface.prefix(n)) == .undecided, "\(n) bytes")
        }
        #expect(ProtocolDetector.classify(preface) == .http2)
        #expect(ProtocolDetector.classify(preface + [0, 0, 0, 4]) == .http2)
        #expect(ProtocolDetector.classify(Array("GET / HTTP/1.1\r\n".utf8)) == .http1)
        #expect(ProtocolDetector.classify(Array("POST /genesys/1/cs/services/start HTTP/1.1\r\n".utf8)) == .http1)
        #expect(ProtocolDetector.classify(Array("PRI * HTTP/1.1\r\n".utf8)) == .http1, "strays at byte 11")
        #expect(ProtocolDetector.classify(Array("P".utf8)) == .undecided)
        #expect(ProtocolDetector.classify([0x16, 0x03, 0x01]) == .http1, "TLS where cleartext was expected: the HTTP/1.1 parser refuses it")
    }
}
