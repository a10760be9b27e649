import ContextModel
import HTTPServing
import NIOCore
import NIOEmbedded
import Testing
@testable import GRPCServer
@testable import NGHTTP2

/// Issue 11, items 5 and 2, as values and on embedded connections: the adaptive admission
/// limit, calls waiting their turn unread with connections served in turn, and answers held
/// for a client that does not take them kept within their budget.
@Suite("Admission control and the answer budget")
struct AdmissionAndAnswerBudgetTests {
    static let ms: UInt64 = 1_000_000

    // MARK: The limit as a value

    @Test("Slots up to the limit; beyond it calls wait, and the window that saw them waiting is saturated")
    func slots() {
        var config = AdmissionLimiter.Configuration()
        config.initialLimit = 20
        config.minLimit = 4
        var limiter = AdmissionLimiter(configuration: config, now: 0)
        for _ in 0..<20 {
            let took = limiter.tryAcquire()
            #expect(took)
        }
        let over = limiter.tryAcquire()
        #expect(!over)
        #expect(limiter.inFlight == 20)
        limiter.release(now: 1 * Self.ms)
        #expect(limiter.hasRoom)
        #expect(limiter.limit == 20, "not reconsidered before the window ends")
    }

    @Test("Saturated, the limit moves toward completion rate × target delay: down when the core is slower, up when faster")
    func adapts() {
        var config = AdmissionLimiter.Configuration()
        config.initialLimit = 1000
        config.minLimit = 4
        config.targetDelay = .milliseconds(50)
        config.window = .milliseconds(100)
        var limiter = AdmissionLimiter(configuration: config, now: 0)
        // The core completes 2,000 calls/s: the target is 2,000 × 0.05 = 100 in flight.
        var now: UInt64 = 0
        for _ in 0..<30 {
            while limiter.tryAcquire() {}
            for _ in 0..<200 {  // 200 completions per 100 ms window
                now += Self.ms / 2
                limiter.release(now: now)
                _ = limiter.tryAcquire()
            }
        }
        #expect((90...115).contains(limiter.limit), "limit \(limiter.limit), target 100")
        // Then the core speeds up to 20,000 calls/s: the limit climbs to about 1,000.
        for _ in 0..<40 {
            while limiter.tryAcquire() {}
            for _ in 0..<2000 {
                now += Self.ms / 20
                limiter.release(now: now)
                _ = limiter.tryAcquire()
            }
        }
        #expect((900...1150).contains(limiter.limit), "limit \(limiter.limit), target 1000")
    }

    @Test("A window without waiting calls leaves the limit alone; the limit stays within its bounds")
    func unsaturatedAndBounds() {
        var config = AdmissionLimiter.Configuration()
        config.initialLimit = 64
        config.minLimit = 16
        config.maxLimit = 128
        var limiter = AdmissionLimiter(configuration: config, now: 0)
        var now: UInt64 = 0
        for _ in 0..<10 {  // light load: one call at a time, never waiting
            let took = limiter.tryAcquire()
            #expect(took)
            now += 200 * Self.ms
            limiter.release(now: now)
        }
        #expect(limiter.limit == 64)
        for _ in 0..<20 {  // a very slow core: one completion per window, calls waiting
            while limiter.tryAcquire() {}
            now += 100 * Self.ms
            limiter.release(now: now)
        }
        #expect(limiter.limit == 16, "held at the floor")
        for _ in 0..<20 {  // a very fast one
            while limiter.tryAcquire() {}
            for _ in 0..<100_000 / 10 {
                now += 10_000
                limiter.release(now: now)
                _ = limiter.tryAcquire()
            }
        }
        #expect(limiter.limit == 128, "held at the ceiling")
    }

    // MARK: On connections

    struct Loop {
        let loop = EmbeddedEventLoop()
        let admissions: LoopAdmissions

        init(limit: Int) {
            var config = AdmissionLimiter.Configuration()
            config.initialLimit = limit
            config.minLimit = 1
            config.window = .hours(1)  // fixed for the test
            admissions = LoopAdmissions(group: loop, configuration: config)
        }

        func connect(_ service: FakeService, configure: (inout GRPCServerHandler.Configuration) -> Void = { _ in },
                     client: HTTP2Settings = .defaults) throws -> (EmbeddedChannel, H2TestClient) {
            var config = GRPCServerHandler.Configuration()
            config.admissions = admissions
            configure(&config)
            let channel = EmbeddedChannel(handler: GRPCServerHandler(service: service, configuration: config), loop: loop)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            return (channel, try H2TestClient(channel: channel, settings: client))
        }
    }

    @Test("Over the limit, calls wait without reaching the service; free slots go to the connections in turn")
    func fairTurns() throws {
        let loop = Loop(limit: 2)
        let service = FakeService()
        service.behaviour = .hold
        let (_, greedy) = try loop.connect(service)
        let (_, polite) = try loop.connect(service)
        var greedyIDs: [Int32] = []
        for i in 0..<6 {
            greedyIDs.append(try greedy.request(path: "/test.Echo/Call", body: H2TestClient.framed([UInt8(i)])))
        }
        try greedy.exchange()
        #expect(service.requests.map { Array($0.message.readableBytesView) } == [[0], [1]], "two slots, four calls waiting")
        let politeID = try polite.request(path: "/test.Echo/Call", body: H2TestClient.framed([0xAA]))
        try polite.exchange()
        #expect(service.requests.count == 2, "the polite call waits too: calls already waiting go first")

        // First free slot: the greedy connection's turn (it waited first); the next: the
        // polite one's, ahead of the greedy connection's four others.
        service.held.removeFirst().succeed([1])
        loop.loop.run()
        service.held.removeFirst().succeed([2])
        loop.loop.run()
        #expect(service.requests.map { Array($0.message.readableBytesView) } == [[0], [1], [2], [0xAA]])
        try greedy.exchange()
        try polite.exchange()
        #expect(greedy.streams[greedyIDs[0]]?.grpcStatus == 0)
        #expect(polite.streams[politeID]?.header(":status") == nil, "still in flight")
        // Everything drains in turn.
        while !service.held.isEmpty {
            service.held.removeFirst().succeed([3])
            loop.loop.run()
        }
        try greedy.exchange()
        try polite.exchange()
        #expect(service.requests.count == 7)
        let greedyStatuses = greedyIDs.map { greedy.streams[$0]?.grpcStatus }
        #expect(greedyStatuses.allSatisfy { $0 == 0 })
        #expect(polite.streams[politeID]?.grpcStatus == 0)
        #expect(loop.admissions.admission(for: loop.loop)?.limiter.inFlight == 0)
    }

    @Test("A waiting call past its deadline gets DEADLINE_EXCEEDED and never reaches the service; a reset one leaves quietly")
    func waitingDeadlineAndReset() throws {
        let loop = Loop(limit: 1)
        let service = FakeService()
        service.behaviour = .hold
        let (channel, client) = try loop.connect(service)
        _ = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        let late = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([2]), extraHeaders: [("grpc-timeout", "100m")])
        let reset = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([3]))
        try client.exchange()
        #expect(service.requests.count == 1)
        loop.loop.advanceTime(to: .now() + .milliseconds(150))  // call deadlines are on the real clock
        try client.exchange()
        #expect(client.streams[late]?.grpcStatus == Int(GRPCStatusCode.deadlineExceeded.rawValue))
        client.session.submitReset(streamID: reset, errorCode: 8)
        try client.exchange()
        service.held.removeFirst().succeed([1])
        loop.loop.run()
        try client.exchange()
        #expect(service.requests.count == 1, "neither the expired nor the reset call was started")
        #expect(loop.admissions.admission(for: loop.loop)?.limiter.inFlight == 0)
        // The connection serves new calls afterwards.
        let next = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([4]))
        try client.exchange()
        #expect(service.requests.count == 2)
        service.held.removeFirst().succeed([4])
        loop.loop.run()
        try client.exchange()
        #expect(client.streams[next]?.grpcStatus == 0)
        _ = channel
    }

    @Test("A call that waited longer than maxWait is refused RESOURCE_EXHAUSTED when its turn comes; the slot goes to the next")
    func maxWait() throws {
        let loop = Loop(limit: 1)
        let service = FakeService()
        service.behaviour = .hold
        let (_, client) = try loop.connect(service)
        _ = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        let stale = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([2]))
        try client.exchange()
        loop.loop.advanceTime(by: .seconds(2))  // the admission's clock (maxWait 1 s)
        let fresh = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([3]))
        try client.exchange()
        service.held.removeFirst().succeed([1])
        loop.loop.run()
        try client.exchange()
        #expect(client.streams[stale]?.grpcStatus == Int(GRPCStatusCode.resourceExhausted.rawValue))
        #expect(client.streams[stale]?.header("grpc-message")?.contains("waited") == true)
        #expect(service.requests.map { Array($0.message.readableBytesView) } == [[1], [3]], "the fresh call got the slot")
        _ = fresh
    }

    @Test("A call the service answers at once (health) takes no slot and is answered while calls wait")
    func localCallsBypass() throws {
        let loop = Loop(limit: 1)
        let service = FakeService()
        service.behaviour = .hold
        let (_, client) = try loop.connect(service)
        _ = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
        _ = try client.request(path: "/test.Echo/Call", body: H2TestClient.framed([2]))
        try client.exchange()
        let (_, prober) = try loop.connect(service)
        let probe = try prober.request(path: FakeService.healthPath, body: H2TestClient.framed([]))
        try prober.exchange()
        #expect(prober.streams[probe]?.grpcStatus == 0)
        #expect(service.held.count == 1)
    }

    // MARK: Answers a client does not take

    @Test("A client that opens no window: large answers fit the budget until it is full, then RESOURCE_EXHAUSTED; small ones always go")
    func answerBudget() throws {
        let loop = Loop(limit: 1000)
        let service = FakeService()  // echo
        var client = HTTP2Settings()
        client.initialWindowSize = 0
        client.manualWindowUpdates = true
        let (_, stuck) = try loop.connect(service, configure: { $0.limits.maxBufferedAnswerBytesPerConnection = 64 << 10 }, client: client)
        let big = [UInt8](repeating: 7, count: 20 << 10)
        var ids: [Int32] = []
        for _ in 0..<5 { ids.append(try stuck.request(path: "/test.Echo/Call", body: H2TestClient.framed(big))) }
        let small = try stuck.request(path: "/test.Echo/Call", body: H2TestClient.framed([1, 2, 3]))
        try stuck.exchange()
        let statuses = ids.map { stuck.streams[$0]?.grpcStatus }
        #expect(statuses.filter { $0 == Int(GRPCStatusCode.resourceExhausted.rawValue) }.count == 2,
                "3 × 20 KiB fit 64 KiB, the 4th and 5th do not: \(statuses)")
        let held = ids.prefix(3).map { (stuck.streams[$0]?.header(":status"), stuck.streams[$0]?.data.isEmpty) }
        #expect(held.allSatisfy { $0.0 == "200" && $0.1 == true })
        #expect(stuck.streams[small]?.header(":status") == "200", "a small answer is taken (and waits for the window)")
    }

    @Test("Answers untaken for the stall timeout: GOAWAY ENHANCE_YOUR_CALM and close; answers taken in time keep it open")
    func answerStall() throws {
        let loop = Loop(limit: 1000)
        let service = FakeService()
        var client = HTTP2Settings()
        client.initialWindowSize = 0
        client.manualWindowUpdates = true
        let (channel, stuck) = try loop.connect(service, configure: { $0.limits.answerStallTimeout = .seconds(5) }, client: client)
        _ = try stuck.request(path: "/test.Echo/Call", body: H2TestClient.framed([UInt8](repeating: 1, count: 100)))
        try stuck.exchange()
        loop.loop.advanceTime(by: .seconds(4))
        try stuck.exchange()
        #expect(channel.isActive)
        loop.loop.advanceTime(by: .seconds(2))
        try? stuck.exchange()
        #expect(!channel.isActive, "closed after 5 s without the client taking a byte")

        // A client that takes its answers: no stall, whatever the time.
        let (open, reader) = try loop.connect(service, configure: { $0.limits.answerStallTimeout = .seconds(5) })
        for _ in 0..<3 {
            _ = try reader.request(path: "/test.Echo/Call", body: H2TestClient.framed([1]))
            try reader.exchange()
            loop.loop.advanceTime(by: .seconds(4))
        }
        try reader.exchange()
        #expect(open.isActive)
    }
}
