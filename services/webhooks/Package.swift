// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "webhooks",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "WebhooksService", targets: ["WebhooksService"]),
        .executable(name: "webhooks", targets: ["webhooks"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/SodiumKit"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        // Outbound deliveries (ARCHITECTURE): pooled connections, TLS, deadlines, no redirects.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "WebhooksService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "GuardedHTTP", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "webhooks",
            dependencies: [
                "WebhooksService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
