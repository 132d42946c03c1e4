// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "audit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AuditService", targets: ["AuditService"]),
        .executable(name: "audit", targets: ["audit"]),
    ],
    dependencies: [
        .package(path: "../../Packages/ServiceKit"),
        .package(path: "../../Packages/RampartModels"),
    ],
    targets: [
        .target(
            name: "AuditService",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        ),
        .executableTarget(
            name: "audit",
            dependencies: [
                "AuditService",
                .product(name: "ServiceKit", package: "ServiceKit"),
            ]
        ),
    ]
)
