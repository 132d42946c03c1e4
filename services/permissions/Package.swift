// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "permissions",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PermissionsService", targets: ["PermissionsService"]),
        .executable(name: "permissions", targets: ["permissions"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
        .package(path: "../../Packages/NATSKit"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
    ],
    targets: [
        .target(
            name: "PermissionsService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "NATSKit", package: "NATSKit"),
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
            name: "permissions",
            dependencies: [
                "PermissionsService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
