// swift-tools-version:6.2
import PackageDescription

/// Access tokens (SPEC AUTH-3): JWTs signed with Ed25519 (`EdDSA`) through SodiumKit, the
/// strict verifier the gateway runs on every request, and JWKS.
let package = Package(
    name: "TokenKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TokenKit", targets: ["TokenKit"])
    ],
    dependencies: [
        .package(path: "../SodiumKit")
    ],
    targets: [
        .target(
            name: "TokenKit",
            dependencies: [.product(name: "SodiumKit", package: "SodiumKit")],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        )
    ]
)
