// swift-tools-version:6.2
import PackageDescription

/// Test-only: starts real nats-server and PostgreSQL instances on loopback, and small helpers
/// to talk to what the tests start. Never a dependency of a service.
let package = Package(
    name: "TestSupport",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TestSupport", targets: ["TestSupport"])
    ],
    targets: [
        .target(name: "TestSupport", swiftSettings: [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")])
    ]
)
