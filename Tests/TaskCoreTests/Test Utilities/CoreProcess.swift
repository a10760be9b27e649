import Foundation
import Testing

/// The real `gateway core` executable in a child process, for what only a process can show:
/// `kill -9` and a restart on the same file.
final class CoreProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    private let output: Pipe

    /// The built executable: `$GATEWAY_BIN`, else `.build/debug/gateway` of this package
    /// (gateway/scripts/test.sh builds it before the tests).
    static var executable: String {
        if let path = ProcessInfo.processInfo.environment["GATEWAY_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/gateway").path
    }

    init(arguments: [String]) throws {
        let path = Self.executable
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RawHTTPClient.Failure(description: "no executable at \(path): run `swift build --product gateway` first")
        }
        process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["core", "--listen", "127.0.0.1:0"] + arguments
        output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // Startup prints the address it listens on; read until then (bounded).
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        var found: Int?
        while found == nil && Date() < deadline {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: #"http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(text[range].split(separator: ":").last!)
            }
        }
        guard let found else {
            process.terminate()
            throw RawHTTPClient.Failure(description: "core did not report its address; output: \(text)")
        }
        port = found
        // Keep draining output so the child never blocks on a full pipe.
        output.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        output.fileHandleForReading.readabilityHandler = nil
    }

    /// SIGTERM (graceful shutdown) and the exit status; -1 when the process did not exit
    /// within 15 s (it is then killed, so no test hangs on it).
    func terminate() -> Int32 {
        process.terminate()
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            output.fileHandleForReading.readabilityHandler = nil
            return -1
        }
        output.fileHandleForReading.readabilityHandler = nil
        return process.terminationStatus
    }
}
