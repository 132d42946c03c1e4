// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "mail",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MailService", targets: ["MailService"]),
        .executable(name: "mail", targets: ["mail"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/RateLimitKit"),
        .package(path: "../../Packages/SodiumKit"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        // STARTTLS and SMTPS (RFC 3207, RFC 8314).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
    ],
    targets: [
        .target(
            name: "MailService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "RateLimitKit", package: "RateLimitKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "mail",
            dependencies: [
                "MailService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
