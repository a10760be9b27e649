import ContextModel
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer
@testable import NGHTTP2

private func admit(_ budget: inout HeaderListBudget, _ name: Int, _ value: Int) -> Bool {
    budget.admit(nameLength: name, valueLength: value)
}

private func strike(_ strikes: inout OversizedHeaderStrikes) -> Bool {
    strikes.strike()
}

@Suite("Header list accounting")
struct HeaderListBudgetTests {
    @Test("RFC 9113 §10.5.1: name + value + 32 per field, up to the limit inclusive")
    func accounting() {
        var budget = HeaderListBudget(maxBytes: 100, maxFields: 10)
        #expect(admit(&budget, 10, 26))  // 68
        #expect(budget.bytes == 68)
        #expect(admit(&budget, 0, 0))  // 100: at the limit
        #expect(!admit(&budget, 0, 1))  // 133
    }

    @Test("The field count is capped even when every field is empty")
    func fieldCount() {
        var budget = HeaderListBudget(maxBytes: 1 << 20, maxFields: 3)
        for _ in 0..<3 { #expect(admit(&budget, 1, 0)) }
        #expect(!admit(&budget, 1, 0))
    }

    @Test("Each header block starts from zero")
    func reset() {
        var budget = HeaderListBudget(maxBytes: 64, maxFields: 10)
        #expect(admit(&budget, 16, 16))
        #expect(!admit(&budget, 16, 16))
        budget.reset()
        #expect(budget == HeaderListBudget(maxBytes: 64, maxFields: 10))
        #expect(admit(&budget, 16, 16))
    }

    @Test("A connection is ended at the first refused block past those tolerated")
    func strikes() {
        var strikes = OversizedHeaderStrikes(tolerated: 2)
        #expect(!strike(&strikes))
        #expect(!strike(&strikes))
        #expect(strike(&strikes))
    }
}

@Suite("Header limits and repeated contract headers on a real nghttp2 session")
struct HeaderLimitsHandlerTests {
    static func make(maxRefused: Int = 4) throws -> (EmbeddedChannel, H2TestClient, FakeService) {
        var config = GRPCServerHandler.Configuration()
        config.http2.maxRefusedHeaderBlocks = maxRefused
        let service = FakeService()
        let channel = EmbeddedChannel(handler: GRPCServerHandler(service: service, configuration: config))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, try H2TestClient(channel: channel), service)
    }

    @Test("A header list over the advertised size resets its stream (ENHANCE_YOUR_CALM); the connection keeps serving")
    func oversizedList() throws {
        let (channel, client, service) = try Self.make()
        let big = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]),
                                     extraHeaders: (0..<5).map { ("x-pad-\($0)", String(repeating: "a", count: 4000)) })
        try client.exchange()
        #expect(client.streams[big]?.closedWith == 0xb)
        #expect(service.requests.isEmpty)
        let ok = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([2]))
        try client.exchange()
        #expect(client.streams[ok]?.grpcStatus == 0)
        #expect(channel.isActive)
    }

    @Test("Too many fields reset the stream even when the bytes are within the limit")
    func tooManyFields() throws {
        let (_, client, service) = try Self.make()
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]),
                                    extraHeaders: (0..<300).map { ("x\($0)", "") })
        try client.exchange()
        #expect(client.streams[id]?.closedWith == 0xb)
        #expect(service.requests.isEmpty)
    }

    @Test("A connection that keeps sending over-large blocks gets GOAWAY and is closed")
    func repeatOffender() throws {
        let (channel, client, service) = try Self.make(maxRefused: 2)
        for _ in 0..<3 {
            try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]),
                               extraHeaders: [("x-pad", String(repeating: "a", count: 17_000))])
        }
        try client.exchange()
        #expect(service.requests.isEmpty)
        #expect(!channel.isActive)
    }

    @Test("A tenant or credentials given twice is INVALID_ARGUMENT, never dispatched", arguments: [
        [("contactcenterid", "b"), ("contactcenterid", "a")], [("authorization", "Bearer x"), ("authorization", "Bearer x")],
    ])
    func repeatedHeader(_ headers: [(String, String)]) throws {
        let (_, client, service) = try Self.make()
        let id = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]), extraHeaders: headers)
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 3)
        #expect(client.streams[id]?.header("cs-exception") == "ValidationException")
        #expect(service.requests.isEmpty)
    }

    @Test("A compressed flag of 0x80 is INTERNAL, never dispatched")
    func badFlag() throws {
        let (_, client, service) = try Self.make()
        var body = H2TestClient.framed([1, 2])
        body[0] = 0x80
        let id = try client.request(path: "/test.Echo/Call", body: body)
        try client.exchange()
        #expect(client.streams[id]?.grpcStatus == 13)
        #expect(service.requests.isEmpty)
    }
}

private func admit(_ limit: inout CancelRateLimit, _ now: UInt64) -> Bool {
    limit.admit(now: now)
}

@Suite("Cancelled-call rate limit")
struct CancelRateLimitTests {
    static let second: UInt64 = 1_000_000_000

    @Test("A burst is admitted, the next cancel is not, and tokens come back at the rate")
    func bucket() {
        var limit = CancelRateLimit(burst: 3, perSecond: 10)
        #expect(admit(&limit, 0) && admit(&limit, 0) && admit(&limit, 0))
        #expect(!admit(&limit, 0))
        #expect(!admit(&limit, Self.second / 20))  // half a token back
        #expect(admit(&limit, Self.second / 10 + Self.second / 20))
        // Refilled to the burst, never beyond.
        #expect(admit(&limit, 100 * Self.second) && admit(&limit, 100 * Self.second)
                && admit(&limit, 100 * Self.second))
        #expect(!admit(&limit, 100 * Self.second))
    }

    @Test("A steady rate under the limit is admitted forever")
    func steady() {
        var limit = CancelRateLimit(burst: 5, perSecond: 50)
        var now: UInt64 = 0
        for _ in 0..<10_000 {
            #expect(admit(&limit, now))
            now += Self.second / 40
        }
    }
}
