// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "rate-limit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RateLimitService", targets: ["RateLimitService"]),
        .executable(name: "rate-limit", targets: ["rate-limit"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
    ],
    targets: [
        .target(
            name: "RateLimitService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .executableTarget(
            name: "rate-limit",
            dependencies: [
                "RateLimitService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
