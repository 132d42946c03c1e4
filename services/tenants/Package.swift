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
    ],
    targets: [
        .target(
            name: "TenantsService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
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
