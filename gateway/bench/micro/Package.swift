// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks of the gateway's per-call CPU work (ordo-one's package-benchmark):
// canonical JSON, strict JSON, protobuf ⇄ JSON translation, the batch codec. A package of its
// own so that the main build never resolves or builds the benchmark tooling; run it with
// gateway/bench/micro.sh (README there: "Micro-benchmarks").
//
// CodecBenchmarks uses `@testable import Gateway` (`Codec` is internal to the module), so the
// benchmarks are built with `swift package -Xswiftc -enable-testing benchmark …`; micro.sh
// passes that flag.
let package = Package(
    name: "cs-gateway-micro",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The main package (library products ContextModel and Gateway). Named, so that the
        // products below do not depend on the name of the folder the repository is cloned in.
        .package(name: "cs-gateway", path: "../../.."),
        // The MallocInterposer trait gives the malloc counters without jemalloc (Swift 6.3+);
        // naming it also turns off the default RuntimeInterposer trait.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        // ByteBuffer: bodies in ContextModel's API are NIOCore's (the main package's version).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // The request and answer bodies every benchmark uses, a small protobuf encoder for the
        // requests (independent of the gateway's own writer), and the shared configuration.
        .target(
            name: "MicroFixtures",
            dependencies: [
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ]
        ),
        .executableTarget(
            name: "ModelBenchmarks",
            dependencies: [
                "MicroFixtures",
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/ModelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                "MicroFixtures",
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "Gateway", package: "cs-gateway"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
