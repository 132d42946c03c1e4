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
    ],
    targets: [
        .target(
            name: "PermissionsService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
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
