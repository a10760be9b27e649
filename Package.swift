// swift-tools-version:6.1
import PackageDescription

// Dependency direction (DESIGN.md §2; an arrow points at what a module uses):
//
//   GatewayCLI (the `gateway` command) ─→ GatewaySettings, GatewayHTTP, TaskCore, LoadTool
//   GatewayHTTP  (listener, TLS, protocol detection, REST bridge, gRPC-Web, CORS, health)
//       ─→ Gateway ─→ GRPCServer ─→ NGHTTP2 ─→ CNghttp2 (libnghttp2)
//   Gateway      (RPC dispatch, protobuf ⇄ canonical JSON, batcher, pool)
//       ─→ ContextProto ─→ CProtobufC (libprotobuf-c), Observability, HTTPServing
//   TaskCore     (the core: operations, stores) ─→ HTTPServing, Observability; GRDB, PostgresNIO
//   LoadTool     ─→ NGHTTP2, ContextProto (a client: not the server)
//   everything   ─→ ContextModel (the contract as plain values; bodies are NIOCore's ByteBuffer)
//
// The gateway and the core meet only in ContextModel (the batch format, routes, errors) and
// HTTPServing: TaskCore does not know the gateway, nor Gateway the core. C libraries, GRDB,
// PostgresNIO and swift-configuration are `internal import`s of the one module that uses them.
let package = Package(
    name: "cs-gateway",
    platforms: [.macOS(.v14)],
    products: [
        // The command `gateway` (serve, core, load, config). Its target is `GatewayCLI`: a target
        // named `gateway` beside the library `Gateway` collides on case-insensitive disks.
        .executable(name: "gateway", targets: ["GatewayCLI"]),
        // For gateway/bench/micro (a separate package): its benchmarks import these modules.
        .library(name: "ContextModel", targets: ["ContextModel"]),
        .library(name: "Gateway", targets: ["Gateway"]),
        // For gateway/fuzz (a separate package): its targets link these instead of Gateway, so
        // that a cold fuzz build compiles neither BoringSSL (swift-nio-ssl) nor NIOPosix.
        .library(name: "GRPCServer", targets: ["GRPCServer"]),
        .library(name: "ContextProto", targets: ["ContextProto"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // SHA-256 of idempotent requests; postgres-nio depends on it already.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // The settings file, environment and flags of `serve` and `core` (gateway/configuration.md).
        // Default traits only: JSON needs no dependency beyond Foundation (YAML would bring Yams).
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        // Ordered start and reverse, time-bounded stop on SIGTERM/SIGINT (README, "Lifecycle").
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Metrics (README "Metrics"): the swift-metrics API, exposed in Prometheus's text format.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // ByteBuffer is the one byte type from socket to store (issue 12): NIOCore only, no
        // event loops or sockets (NIOPosix) come with it.
        .target(name: "ContextModel", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        // HTTP/1.1 serving shared by the core and the gateway's REST side: the request and
        // answer of one REST call, and a keep-alive, pipelining connection handler.
        .target(
            name: "HTTPServing",
            dependencies: [
                "ContextModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Metrics and trace context shared by the gateway and the core: per-event-loop counters
        // (no lock or atomic on the hot path), the Prometheus registry, the /metrics listener.
        .target(
            name: "Observability",
            dependencies: [
                "ContextModel",
                "HTTPServing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .systemLibrary(
            name: "CProtobufC", path: "Sources/CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        // protoc-c output for proto/, committed; gateway/scripts/gen-proto.sh regenerates it.
        .target(name: "ContextProto", dependencies: ["CProtobufC"]),
        .target(
            name: "Gateway",
            dependencies: [
                "ContextModel",
                "ContextProto",
                "CProtobufC",
                "GRPCServer",
                "HTTPServing",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The gateway's HTTP side: one listener (h2c or TLS) whose connections are told apart
        // by their first bytes (ProtocolDetector); REST bridged to the core, gRPC-Web, CORS,
        // health and readiness on either protocol (GatewayHTTPService), gRPC handed to the
        // GRPCServer with the Gateway as its service.
        .target(
            name: "GatewayHTTP",
            dependencies: [
                "ContextModel",
                "Gateway",
                "GRPCServer",
                "HTTPServing",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TaskCore",
            dependencies: [
                "ContextModel",
                "HTTPServing",
                "Observability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // libnghttp2 1.52 from Debian (STACK-NOTES.md): HTTP/2 framing for the front end.
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // The nghttp2 session (server and client role) and its header block: HTTP/2 framing,
        // flow control and the header limits nghttp2 does not enforce. No gRPC in it.
        .target(
            name: "NGHTTP2",
            dependencies: [
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "GRPCServer",
            dependencies: [
                "NGHTTP2",
                "ContextModel",
                "HTTPServing",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [
                // Release builds skip the dynamic exclusivity checks: the state machine of every
                // call is mutated through its stream record (a class), and perf put
                // swift_beginAccess/AccessSet::insert at ~3.5% of the front end. Measured
                // (gateway/bench/grpc-start-task.sh, gateway-stub, alternating, 2026-12-03):
                // 86.4k/82.4k/80.8k req/s against 81.6k/81.0k/74.7k with the checks (+2–8%).
                // Debug builds, which every test runs, keep them; path dependencies (fuzz,
                // micro) may use unsafe flags.
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
            ]
        ),
        // `gateway load`: the load tool (closed and open loop, journeys), on the same nghttp2
        // and protobuf-c stack as the gateway.
        .target(
            name: "LoadTool",
            dependencies: [
                "ContextModel",
                "ContextProto",
                "CProtobufC",
                "NGHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .executableTarget(
            name: "GatewayCLI",
            dependencies: [
                "LoadTool",
                "TaskCore",
                "Gateway",
                "GatewayHTTP",
                "GRPCServer",
                "HTTPServing",
                "ContextModel",
                "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "GatewaySettings",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The settings of `serve` and `core`: one table of keys (type, default, unit, check,
        // flag; the environment variable derived), resolved from flags, environment and a JSON
        // file (README, "Configuration").
        .target(
            name: "GatewaySettings",
            dependencies: [
                "ContextModel",
                "Gateway",
                "GRPCServer",
                "NGHTTP2",
                "HTTPServing",
                "TaskCore",
                .product(name: "Configuration", package: "swift-configuration"),
            ]
        ),
        .testTarget(name: "GatewaySettingsTests", dependencies: ["GatewaySettings"]),
        .testTarget(name: "ContextModelTests", dependencies: ["ContextModel"]),
        // The load tool's pure parts: open-loop schedule, journey plan, encoders, report.
        .testTarget(name: "LoadToolTests", dependencies: ["LoadTool", "ContextModel", "ContextProto"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["Gateway", "GatewayHTTP", "ContextModel", "ContextProto"],
            exclude: ["vectors"]  // the generator of GoldenVectors.swift and its Python inputs
        ),
        .testTarget(
            name: "GRPCServerTests",
            dependencies: [
                "GRPCServer",
                "NGHTTP2",
                "HTTPServing",
                "ContextModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "TaskCoreTests",
            dependencies: [
                "TaskCore",
                "HTTPServing",
                "Gateway",
                "GatewayHTTP",  // the REST conformance sweep runs the core's tests through a gateway too
                "ContextModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
