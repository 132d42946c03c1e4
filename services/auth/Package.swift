// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "auth",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AuthService", targets: ["AuthService"]),
        .executable(name: "auth", targets: ["auth"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
    ],
    targets: [
        .target(
            name: "AuthService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .executableTarget(
            name: "auth",
            dependencies: [
                "AuthService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
