// swift-tools-version:6.2
import PackageDescription

/// `rampart-bench`, run by `make bench` in release: NATSKit against nats.c, JetStream, and
/// rate-limit decisions (against the release `rate-limit` executable), audit, tenants and auth
/// (against their release executables), permissions (its release executable, and the
/// gateway's decision cache in process), and the gateway's whole pipeline next to a bare
/// Hummingbird route.
let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rampart-bench", targets: ["rampart-bench"])
    ],
    dependencies: [
        .package(path: "../NATSKit"),
        .package(path: "../TestSupport"),
        .package(path: "../ServiceKit"),
        .package(path: "../RampartModels"),
        .package(path: "../SodiumKit"),
        .package(path: "../TokenKit"),
        .package(path: "../RateLimitKit"),
        .package(path: "../../services/auth"),
        .package(path: "../../services/gateway"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
    ],
    targets: [
        .executableTarget(
            name: "rampart-bench",
            dependencies: [
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "TestSupport", package: "TestSupport"),
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "TokenKit", package: "TokenKit"),
                .product(name: "RateLimitKit", package: "RateLimitKit"),
                .product(name: "AuthService", package: "auth"),
                .product(name: "GatewayService", package: "gateway"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        )
    ]
)
