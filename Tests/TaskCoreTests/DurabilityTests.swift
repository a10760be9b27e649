import ContextModel
import Foundation
import NIOConcurrencyHelpers
import Testing

@Suite("Durability of the real executable", .serialized)
struct DurabilityTests {
    @Test("kill -9 mid-load: every acknowledged task is there after a restart, and ids go on without reuse")
    func killNineMidLoad() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/cs.sqlite"
        let first = try CoreProcess(arguments: ["--data", data])
        let port = first.port
        let base = "/genesys/1/cs"

        let sid = try await detached { () -> Int64 in
            let c = try RawHTTPClient(port: port)
            try c.send(RawHTTPClient.request("POST", "\(base)/services/start", body: "{}"))
            return try jsonInt(c.readResponse().body, "service_id")!
        }

        // Four clients start tasks as fast as they can; the process is killed while they do.
        let acknowledged = NIOLockedValueBox<[Int64: String]>([:])
        let clients = 4
        let killAfter = 200
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    _ = try? await detached {
                        let client = try RawHTTPClient(port: port, timeoutSeconds: 5)
                        for i in 0..<100_000 {
                            let marker = "c\(c)-\(i)"
                            try client.send(RawHTTPClient.request("POST", "\(base)/services/\(sid)/tasks/start",
                                                                  body: #"{"marker":"\#(marker)"}"#))
                            let r = try client.readResponse()  // throws once the process is gone
                            guard r.status == 201, let id = try jsonInt(r.body, "task_id") else { return }
                            acknowledged.withLockedValue { $0[id] = marker }
                        }
                    }
                }
            }
            group.addTask {
                while acknowledged.withLockedValue({ $0.count }) < killAfter {
                    try await Task.sleep(nanoseconds: 1_000_000)
                }
                first.kill9()
            }
            try await group.waitForAll()
        }
        let acked = acknowledged.withLockedValue { $0 }
        #expect(acked.count >= killAfter)

        // Restart on the same file: every acknowledged task is there with its own body.
        let second = try CoreProcess(arguments: ["--data", data])
        let port2 = second.port
        let (listBody, next) = try await detached { () -> ([UInt8], RawHTTPClient.Response) in
            let c = try RawHTTPClient(port: port2)
            try c.send(RawHTTPClient.request("GET", "\(base)/services/\(sid)/tasks"))
            let list = try c.readResponse().body
            try c.send(RawHTTPClient.request("POST", "\(base)/services/\(sid)/tasks/start", body: "{}"))
            return (list, try c.readResponse())
        }
        let stored = try JSONSerialization.jsonObject(with: Data(listBody)) as! [[String: Any]]
        let byID = Dictionary(uniqueKeysWithValues: stored.map { (Int64($0["task_id"] as! Int), $0["marker"] as? String) })
        for (id, marker) in acked {
            #expect(byID[id] == marker, "acknowledged task \(id) (\(marker)) after restart: \(String(describing: byID[id]))")
        }
        // Stored ids are gap-free from 1 (each was allocated in its own committed transaction).
        #expect(byID.keys.sorted() == Array(1...Int64(byID.count)))
        // The next id continues after everything stored: nothing is reused.
        let nextID = try #require(try jsonInt(next.body, "task_id"))
        #expect(nextID == Int64(byID.count) + 1)
        #expect(second.terminate() == 0, "SIGTERM is a clean exit")
    }

    @Test("SIGTERM shuts down cleanly and the data is there on the next start")
    func gracefulRestart() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let data = directory + "/nested/folder/cs.sqlite"  // folders are created on first start
        let base = "/genesys/1/cs"
        let core = try CoreProcess(arguments: ["--data", data])
        let port = core.port
        let body = try await detached { () -> String in
            let c = try RawHTTPClient(port: port)
            try c.send(RawHTTPClient.request("POST", "\(base)/services/start", body: #"{"customer_id":"kept"}"#))
            return try c.readResponse().text
        }
        #expect(body == #"{"service_id":1}"#)
        #expect(core.terminate() == 0)
        let again = try CoreProcess(arguments: ["--data", data])
        let port2 = again.port
        let service = try await detached { () -> String in
            let c = try RawHTTPClient(port: port2)
            try c.send(RawHTTPClient.request("GET", "\(base)/services/1"))
            return try c.readResponse().text
        }
        #expect(service.contains(#""customer_id":"kept""#))
        #expect(again.terminate() == 0)
    }
}
