// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "gateway",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "GatewayService", targets: ["GatewayService"]),
        .executable(name: "gateway", targets: ["gateway"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/TokenKit"),
        .package(path: "../../Packages/SodiumKit"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/RateLimitKit"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.0"),
    ],
    targets: [
        .target(
            name: "GatewayService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "TokenKit", package: "TokenKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "RateLimitKit", package: "RateLimitKit"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            // api/openapi.json, written by `make openapi`; the console's templates and stylesheet.
            resources: [.copy("Resources/openapi.json"), .copy("Resources/console")],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "gateway",
            dependencies: [
                "GatewayService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
