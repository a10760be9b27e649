// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for the code that reads untrusted bytes (README there: "Fuzzing"). A
// package of its own, like gateway/bench/micro, so that the main build never sees the fuzzer
// flags. Every target is an executable whose `main` comes from libFuzzer: build with
// gateway/fuzz/run.sh, which passes
//
//   -Xswiftc -sanitize=fuzzer   coverage instrumentation and libFuzzer's main
//   -Xswiftc -enable-testing    `@testable import GatewayCodec` / `GRPCServer` (Codec,
//                               Base64, GRPCWeb.readMessage are internal)
//
// Each target checks invariants (round trips, "accepted output is accepted again"), not only
// "does not crash"; a broken invariant is a `fatalError`, which libFuzzer reports as a crash.
let package = Package(
    name: "cs-gateway-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The main package (library products ContextModel, ContextProto, GRPCServer), named so
        // that the products below do not depend on the name of the folder the repository is
        // cloned in.
        .package(name: "cs-gateway", path: "../.."),
        // Same requirement as the main package: one resolution, NIOEmbedded for the h2 target.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // `check`, and the helpers the targets share.
        .target(name: "FuzzSupport", dependencies: ["CLibFuzzer"], path: "Targets/FuzzSupport"),
        // The declaration of libFuzzer's LLVMFuzzerRunDriver.
        .target(name: "CLibFuzzer", path: "Targets/CLibFuzzer"),
        .executableTarget(
            name: "FuzzStrictJSON",
            dependencies: ["FuzzSupport", .product(name: "ContextModel", package: "cs-gateway")],
            path: "Targets/FuzzStrictJSON"
        ),
        .executableTarget(
            name: "FuzzBatchCodec",
            dependencies: ["FuzzSupport", .product(name: "ContextModel", package: "cs-gateway")],
            path: "Targets/FuzzBatchCodec"
        ),
        .executableTarget(
            name: "FuzzRESTRoute",
            dependencies: ["FuzzSupport", .product(name: "ContextModel", package: "cs-gateway")],
            path: "Targets/FuzzRESTRoute"
        ),
        // The Gateway module's protobuf codec, compiled here from its own files (symlinks into
        // Sources/Gateway): the Gateway module would bring swift-nio-ssl and NIOPosix, minutes
        // of a cold build that the codec does not use.
        .target(
            name: "GatewayCodec",
            dependencies: [
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "ContextProto", package: "cs-gateway"),
                // The response writer writes into a ByteBuffer (behind gRPC's prefix).
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Targets/GatewayCodec"
        ),
        .executableTarget(
            name: "FuzzProtoRequest",
            dependencies: ["FuzzSupport", "GatewayCodec", .product(name: "ContextModel", package: "cs-gateway")],
            path: "Targets/FuzzProtoRequest"
        ),
        .executableTarget(
            name: "FuzzGRPCWeb",
            dependencies: [
                "FuzzSupport",
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "GRPCServer", package: "cs-gateway"),  // brings HTTPServing
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Targets/FuzzGRPCWeb"
        ),
        .executableTarget(
            name: "FuzzHTTP2Server",
            dependencies: [
                "FuzzSupport",
                .product(name: "ContextModel", package: "cs-gateway"),
                .product(name: "GRPCServer", package: "cs-gateway"),  // brings HTTPServing
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Targets/FuzzHTTP2Server"
        ),
    ],
    swiftLanguageModes: [.v6]
)
