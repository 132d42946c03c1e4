// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "audit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AuditService", targets: ["AuditService"]),
        .executable(name: "audit", targets: ["audit"]),
        .executable(name: "rampart-audit", targets: ["rampart-audit"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/SodiumKit"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        .target(
            name: "AuditService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "audit",
            dependencies: [
                "AuditService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
        .executableTarget(
            name: "rampart-audit",
            dependencies: [
                "AuditService",
                .product(name: "SodiumKit", package: "SodiumKit"),
            ]
        ),
    ]
)
