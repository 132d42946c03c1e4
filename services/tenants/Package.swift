// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "tenants",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TenantsService", targets: ["TenantsService"]),
        .executable(name: "tenants", targets: ["tenants"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/SodiumKit"),
        .package(path: "../../Packages/RateLimitKit"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        .target(
            name: "TenantsService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "RateLimitKit", package: "RateLimitKit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(
            name: "tenants",
            dependencies: [
                "TenantsService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
