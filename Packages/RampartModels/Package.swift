// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "RampartModels",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RampartModels", targets: ["RampartModels"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0")
    ],
    targets: [
        .target(
            name: "RampartModels",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        )
    ]
)
