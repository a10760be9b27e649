import ContextModel
import Foundation
import GatewaySettings
import HTTPServing
import Logging
import NIOCore
import NIOPosix
import TaskCore

/// The task core's part of the settings, shared by `gateway core` and the embedded core of
/// `gateway serve`.
struct CoreSetup {
    let settings: Settings

    var coreConfiguration: CoreConfiguration {
        var config = CoreConfiguration()
        config.basePath = settings.string("core.base-path")
        config.publicBase = settings.optionalString("core.public-base")
        config.limits = JSONLimits(maxBytes: settings.int("core.max-body"), maxDepth: settings.int("core.max-depth"))
        config.authTokens = settings.strings("core.auth-tokens")
        config.batchEnabled = settings.bool("core.batch-endpoint")
        config.maxBatchItems = settings.int("core.max-batch-items")
        config.maxBatchBytes = settings.int("core.max-batch-bytes")
        config.idempotencyKeyLifetimeSeconds = Int64(settings.int("core.idempotency-key-seconds"))
        config.gatewayKeyLifetimeSeconds = Int64(settings.int("core.gateway-key-seconds"))
        return config
    }

    /// Limits of every accepted connection (README, "Limits and timeouts"): the gateway's port
    /// and the core's.
    var connectionLimits: ConnectionLimits {
        var limits = ConnectionLimits()
        limits.maxHeaderListSize = settings.int("connections.max-header-list-size")
        limits.maxHeaderFields = settings.int("connections.max-header-fields")
        limits.handshakeTimeout = .milliseconds(Int64(settings.int("connections.handshake-timeout-millis")))
        limits.requestHeadTimeout = .milliseconds(Int64(settings.int("connections.request-head-timeout-millis")))
        limits.requestBodyTimeout = .milliseconds(Int64(settings.int("connections.request-body-timeout-millis")))
        limits.idleTimeout = .seconds(Int64(settings.int("connections.idle-timeout-seconds")))
        limits.maxBufferedAnswerBytesPerConnection = settings.int("connections.max-buffered-answer-bytes-per-connection")
        limits.answerStallTimeout = .milliseconds(Int64(settings.int("connections.answer-stall-timeout-millis")))
        return limits
    }

    /// Client connections this process may hold, both listeners together (`ConnectionSlots`):
    /// the setting, else the descriptor limit (raised to its hard maximum here) minus a reserve.
    func connectionSlots() -> ConnectionSlots {
        let descriptors = ConnectionSlots.raiseDescriptorLimit()
        return ConnectionSlots(limit: settings.optionalInt("connections.max-connections")
            ?? ConnectionSlots.limit(forDescriptors: descriptors))
    }

    var threads: Int { settings.optionalInt("process.threads") ?? System.coreCount }
    var logLevel: Logger.Level { Logger.Level(rawValue: settings.string("logging.level")) ?? .info }
    var drainTimeout: TimeAmount { .milliseconds(Int64(settings.int("lifecycle.drain-timeout-millis"))) }
    var listen: HostPort { HostPort(settings.string("core.listen"))! }
    var basePath: String { settings.string("core.base-path") }

    var storeDescription: String {
        if let url = settings.optionalString("store.url"), let config = try? PostgresTaskStore.Configuration.parse(url: url, password: nil) {
            return config.description
        }
        return settings.bool("store.memory") ? "memory"
            : "\(settings.string("store.sqlite-path")) (synchronous=\(settings.string("store.sqlite-synchronous")))"
    }

    /// The PostgreSQL configuration of `store.url`, with its password read now.
    func postgresConfiguration(_ url: String) throws -> PostgresTaskStore.Configuration {
        var password = ProcessInfo.processInfo.environment["CS_STORE_PASSWORD"]
        if let file = settings.optionalString("store.password-file") {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw StartupError("cannot read the PostgreSQL password file \(file) (\(settings.name("store.password-file"))): "
                    + "\(PlainError.describe(error)). Check the path and that this user may read it.")
            }
            password = String(text.prefix { $0 != "\n" && $0 != "\r" })
        }
        var config = try PostgresTaskStore.Configuration.parse(url: url, password: password)
        config.maxConnections = settings.int("store.max-connections")
        config.operationTimeout = .milliseconds(settings.int("store.timeout-millis"))
        return config
    }

    func makeStore(group: any EventLoopGroup, logger: Logger) async throws -> any TaskStore {
        if settings.bool("store.memory") {
            logger.warning("in-memory store: nothing survives a restart")
            return InMemoryTaskStore()
        }
        if let url = settings.optionalString("store.url") {
            let config = try postgresConfiguration(url)
            do {
                return try await PostgresTaskStore.open(config, eventLoopGroup: group, logger: Logger(label: "cs.core.postgres"))
            } catch {
                throw StartupError("cannot open the PostgreSQL store \(config.description): \(String(reflecting: error)). "
                    + "Check that the server runs and accepts this user (\(settings.name("store.url")), flag --store; "
                    + "CS_STORE_PASSWORD or store.password-file).")
            }
        }
        let path = settings.string("store.sqlite-path")
        let synchronous = SQLiteTaskStore.Configuration.Synchronous(rawValue: settings.string("store.sqlite-synchronous")) ?? .full
        // The folder first, so that its failure is said in words (SQLiteTaskStore's own attempt
        // reports Foundation's `NSCocoaErrorDomain Code=4`).
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw StartupError("cannot open the SQLite store at \(path): its folder \(folder) cannot be created "
                    + "(\(PlainError.describe(error))). Create it and let this user write it, or choose another file with "
                    + "store.sqlite-path (flag --data, \(Setting.byKey["store.sqlite-path"]!.environmentVariable)).")
            }
        }
        do {
            return try SQLiteTaskStore(.init(path: path, synchronous: synchronous))
        } catch {
            throw StartupError("cannot open the SQLite store at \(path): \(PlainError.describe(error)). Check that this user "
                + "can write the file and its folder, or choose another file with store.sqlite-path (flag --data).")
        }
    }
}

/// A start-up failure, said in plain words: what is wrong and which setting to change.
struct StartupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum PlainError {
    /// An error in words: errno text for system errors, Foundation's description without its
    /// domain and code, NIO's bind errors as what they mean.
    static func describe(_ error: any Error) -> String {
        if let io = error as? IOError {
            return String(cString: strerror(io.errnoCode))
        }
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or folder"
            case .fileWriteNoPermission, .fileReadNoPermission: return "permission denied"
            case .fileWriteVolumeReadOnly: return "read-only file system"
            case .fileWriteOutOfSpace: return "no space left on the device"
            case .fileWriteUnknown, .fileReadUnknown:
                return "the file system refused (a parent is not a folder, or cannot be written)"
            default: break
            }
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return "\(error)"
    }

    /// Why a listener could not be opened, and what to change.
    static func bindFailure(_ error: any Error, address: HostPort, setting: String, settings: Settings) -> StartupError {
        var why = "\(error)"
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: why = "the address is already in use (another process listens on port \(address.port))"
            case EADDRNOTAVAIL: why = "this machine has no address \(address.host)"
            case EACCES: why = "permission denied (ports below 1024 need privileges)"
            default: why = String(cString: strerror(io.errnoCode))
            }
        } else if "\(error)".contains("unknown") || "\(error)".contains("resolve") {
            why = "the host \(address.host) cannot be resolved"
        }
        return StartupError("cannot listen on \(address): \(why). Change \(settings.name(setting)) "
            + "(flag \(Setting.byKey[setting]!.flags[settings.command] ?? ""), \(Setting.byKey[setting]!.environmentVariable)).")
    }
}
