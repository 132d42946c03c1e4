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
    ],
    targets: [
        .target(
            name: "WebhooksService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
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
