import Gateway
import GatewayHTTP
import Testing

/// Readiness (README, "Lifecycle") on a real gateway in front of a real core, over a socket:
/// `/readyz` follows the gateway's `Readiness` (whoever runs it sets it), `/healthz` does not.
@Suite("Readiness")
struct ReadinessTests {
    static func get(_ port: Int, _ path: String) async throws -> RawHTTPClient.Response {
        try await detached {
            let client = try RawHTTPClient(port: port)
            try client.send(RawHTTPClient.request("GET", path))
            return try client.readResponse()
        }
    }

    @Test("/readyz is 503 STARTING until ready, 200 READY, then 503 DRAINING for good; /healthz stays 200")
    func readinessStates() async throws {
        let harness = try await CoreHarness(.memory, front: .gateway)
        let gateway = try #require(harness.gateway)
        let port = gateway.server.port
        do {
            var ready = try await Self.get(port, "/readyz")
            #expect((ready.status, ready.text) == (503, #"{"status":"STARTING"}"#))
            #expect(ready.header("retry-after") == "1")
            gateway.service.readiness.set(.ready)
            ready = try await Self.get(port, "/readyz")
            #expect((ready.status, ready.text) == (200, #"{"status":"READY"}"#))
            gateway.service.readiness.set(.draining)
            gateway.service.readiness.set(.ready)  // never back from draining
            ready = try await Self.get(port, "/readyz")
            #expect((ready.status, ready.text) == (503, #"{"status":"DRAINING"}"#))
            let live = try await Self.get(port, "/healthz")
            #expect((live.status, live.text) == (200, #"{"status":"SERVING"}"#))
        } catch {
            try await harness.stop()
            throw error
        }
        try await harness.stop()
    }
}
