// swift-tools-version:6.2
import PackageDescription

// What the gateway and the rate-limit service share: the ban list watched from
// NATS key-value, the client with its failure modes, and the RateLimit response fields.
let package = Package(
    name: "RateLimitKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RateLimitKit", targets: ["RateLimitKit"])
    ],
    dependencies: [
        .package(path: "../NATSKit"),
        .package(path: "../RampartModels"),
        .package(path: "../ServiceKit"),
        .package(path: "../SodiumKit"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
    ],
    targets: [
        .target(
            name: "RateLimitKit",
            dependencies: [
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        )
    ]
)
