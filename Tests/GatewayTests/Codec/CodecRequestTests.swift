import ContextModel
import NIOCore
import Testing
@testable import Gateway

#if canImport(Glibc)
import Glibc
#endif

@Suite("Codec: protobuf requests → REST calls")
struct CodecRequestTests {
    @Test("Golden vector (made by Python's protobuf runtime)", arguments: GoldenVectors.requests)
    func golden(_ vector: RequestVector) throws {
        let result = decode(vector.method, vector.protobuf)
        switch vector.expected {
        case .call(let route, let json):
            let call = try result.get()
            #expect(call.route == route)
            #expect(String(buffer: call.body) == (json ?? ""))
            if json != nil {
                // What the gateway sends is a body the model itself accepts as it is.
                let kind = try #require(Self.kind(vector.method))
                #expect(throws: Never.self) {
                    try Event.parse(call.body, kind: kind, phase: Self.phase(vector.method))
                }
            }
        case .status(let code, let message):
            guard case .failure(let status) = result else {
                Issue.record("expected \(code), got \(result)")
                return
            }
            #expect(status.code == code)
            if let message { #expect(status.message == message) }
        case .modelError(let kind, let phase, let restBody, let prefix):
            guard case .failure(let status) = result else {
                Issue.record("expected the model's error, got \(result)")
                return
            }
            // The REST side of the same request, through the model.
            var restError: ContextError?
            do {
                _ = try Event.parse(Array(restBody.utf8), kind: kind, phase: phase)
            } catch {
                restError = error
            }
            let expected = try #require(restError)
            #expect(status.code == GRPCStatus(expected).code)
            #expect(status.message == (prefix ?? "") + expected.message)
            #expect(status.exception == expected.exception)
        }
    }

    @Test("Every RPC with a request message has at least one golden vector")
    func coverage() {
        let covered = Set(GoldenVectors.requests.map(\.method))
        for method in RPCMethod.allCases where !method.isHealth {
            #expect(covered.contains(method), "no vector for \(method)")
        }
    }

    @Test("A Struct nested 100,000 deep is refused before protobuf-c recurses into it")
    func deepStruct() throws {
        // {"d":{"d":…{}…}}: Struct → FieldsEntry → Value.struct_value → Struct …
        var wire = InsideOutWire()
        for _ in 0..<100_000 {
            wire.wrap(5)                         // Value.struct_value
            wire.wrap(2)                         // FieldsEntry.value
            wire.prepend([0x0A, 0x01, 0x64])     // FieldsEntry.key = "d"
            wire.wrap(1)                         // Struct.fields
        }
        wire.wrap(14)                            // StartTaskRequest.extensions
        wire.prepend([0x08, 0x07])               // service_id = 7
        let result = decode(.startTask, wire.bytes)
        guard case .failure(let status) = result else {
            Issue.record("expected INVALID_ARGUMENT, got \(result)")
            return
        }
        #expect(status.code == .invalidArgument)
        #expect(status.message == "extensions: JSON nesting deeper than 64")
    }

    @Test("Lists count toward the depth like objects", arguments: [63, 64])
    func deepList(_ lists: Int) throws {
        // {"d":[[…[]…]]}: the Struct is depth 1, each list one more.
        var wire = InsideOutWire()
        for level in 0..<lists {
            if level > 0 { wire.wrap(1) }        // ListValue.values
            wire.wrap(6)                         // Value.list_value
        }
        wire.wrap(2)
        wire.prepend([0x0A, 0x01, 0x64])
        wire.wrap(1)
        wire.wrap(14)
        wire.prepend([0x08, 0x07])
        let result = decode(.completeTask, [0x10, 0x01] + wire.bytes)
        if lists + 1 <= 64 {
            let call = try result.get()
            let expected = #"{"d":"# + String(repeating: "[", count: lists) + String(repeating: "]", count: lists) + "}"
            #expect(String(buffer: call.body) == expected)
        } else {
            #expect(throws: GRPCStatus(ContextError(status: 400, exception: "ValidationException", message: "extensions: JSON nesting deeper than 64"))) {
                try result.get()
            }
        }
    }

    @Test("The depth guard follows only the Struct path and gives garbage to protobuf-c")
    func depthGuard() {
        let plain: [UInt8] = [0x08, 0x07, 0x7A, 0x02, 0x7B, 0x7D]  // service_id, extensions_json "{}"
        plain.withUnsafeBytes { #expect(!StructDepthGuard.exceeds($0, field: 14, limit: 1)) }
        let garbage: [UInt8] = [0x72, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        garbage.withUnsafeBytes { #expect(!StructDepthGuard.exceeds($0, field: 14, limit: 64)) }
        let empty: [UInt8] = []
        empty.withUnsafeBytes { #expect(!StructDepthGuard.exceeds($0, field: 14, limit: 64)) }
    }

    @Test("Health RPCs have no REST call")
    func health() {
        for method in [RPCMethod.healthCheck, .healthWatch] {
            guard case .failure(let status) = decode(method, []) else {
                Issue.record("health must not be translated")
                continue
            }
            #expect(status.code == .internalError)
        }
    }

    #if canImport(Glibc)
    @Test("Every unpacked message is freed, on success and on every error path")
    func noLeaks() throws {
        // A StartTask with 2 KiB strings in its allocated parts: leaking the unpacked message
        // would hold 60 MiB or more after 10,000 rounds. Other tests run in parallel in this
        // process and raise the resident set too (by 44 MiB once in CI, with memory they had
        // freed), hence the three windows below.
        let long = String(repeating: "x", count: 2048)
        let json = Array(#"{"k":""#.utf8) + Array(long.utf8) + Array(#""}"#.utf8)
        var request: [UInt8] = [0x08, 0x07, 0x1A] + varint(UInt64(long.utf8.count + 3)) + [0x12] + varint(UInt64(long.utf8.count)) + Array(long.utf8)
        request += [0x7A] + varint(UInt64(json.count)) + json
        let invalid: [UInt8] = [0x08, 0x07, 0x2A, 0x23, 0x12, 0x21] + Array(repeating: 0x78, count: 33)  // 33-char session_id
        let both = request + [0x72, 0x00]  // extensions and extensions_json
        func run(_ n: Int) {
            for _ in 0..<n {
                _ = decode(.startTask, request)
                _ = decode(.startTask, invalid)
                _ = decode(.startTask, both)
            }
        }
        run(500)
        // A leak grows the resident set by 60 MiB or more in every window; other tests'
        // memory does not keep growing it window after window, so the smallest growth of
        // three windows tells one from the other.
        var growths: [Int] = []
        for _ in 0..<3 {
            let before = try residentBytes()
            run(10_000)
            growths.append(try residentBytes() - before)
        }
        #expect(growths.min()! < 24 << 20, "resident set grew by \(growths) bytes in the three windows")
    }

    /// The second field of /proc/self/statm, in bytes.
    private func residentBytes() throws -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        try #require(n > 0)
        let fields = buffer[..<n].split(separator: UInt8(ascii: " "))
        let pages = try #require(Int(String(decoding: fields[1], as: UTF8.self)))
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
    #endif

    static func kind(_ method: RPCMethod) -> ResourceKind? {
        switch method {
        case .startService, .completeService: .service
        case .startState, .completeState: .state
        case .startTask, .completeTask: .task
        default: nil
        }
    }

    static func phase(_ method: RPCMethod) -> EventPhase {
        switch method {
        case .startService, .startState, .startTask: .start
        default: .end
        }
    }
}

@Suite("RPC methods")
struct RPCMethodTests {
    @Test("Every :path maps back to its method", arguments: RPCMethod.allCases)
    func roundTrip(_ method: RPCMethod) {
        #expect(RPCMethod(path: method.path) == method)
        #expect(RPCMethod(path: Substring("x" + method.path).dropFirst()) == method)
    }

    @Test("Anything but the exact path is not a method", arguments: [
        "", "/", "/genesys.cs.v1.ContextServices/", "/genesys.cs.v1.ContextServices/starttask",
        "/genesys.cs.v1.ContextServices/StartTask/", "genesys.cs.v1.ContextServices/StartTask",
        "/genesys.cs.v1.ContextServices/StartTaskX", "/grpc.health.v1.Health/check",
        "/genesys.cs.v2.ContextServices/StartTask",
    ])
    func unknown(_ path: String) {
        #expect(RPCMethod(path: path) == nil)
    }
}
