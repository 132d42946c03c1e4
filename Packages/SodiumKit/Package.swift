// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "SodiumKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SodiumKit", targets: ["SodiumKit"])
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(
            name: "SodiumKit",
            dependencies: ["CSodium"],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
    ]
)
