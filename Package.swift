// swift-tools-version:6.2
// The workspace: every package by path, so that one `swift build --build-tests` builds the
// whole graph once and `swift test` runs every suite (SwiftPM runs only the root's tests).
import PackageDescription

let services = ["auth", "tenants", "permissions", "audit", "rate-limit", "webhooks", "gateway", "mail"]
let serviceLibraries: [(library: String, package: String)] = [
    ("AuthService", "auth"), ("TenantsService", "tenants"), ("PermissionsService", "permissions"), ("AuditService", "audit"),
    ("RateLimitService", "rate-limit"), ("WebhooksService", "webhooks"), ("GatewayService", "gateway"), ("MailService", "mail"),
]

/// One test target per service, and the suites that cross them all.
let serviceTestTargets = [
    "AuthServiceTests", "TenantsServiceTests", "PermissionsServiceTests", "AuditServiceTests", "RateLimitServiceTests",
    "WebhooksServiceTests", "GatewayServiceTests", "MailServiceTests", "EndToEndTests",
]

let servicesTestDependencies: [Target.Dependency] =
    [
        .product(name: "ServiceKit", package: "ServiceKit"),
        .product(name: "RampartModels", package: "RampartModels"),
        .product(name: "TestSupport", package: "TestSupport"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "RateLimitKit", package: "RateLimitKit"),
        .product(name: "NATSKit", package: "NATSKit"),
        .product(name: "SodiumKit", package: "SodiumKit"),
        .product(name: "PropertyBased", package: "swift-property-based"),
        .product(name: "TokenKit", package: "TokenKit"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "BackupKit", package: "Backup"),
        .product(name: "PostgresNIO", package: "postgres-nio"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    ] + serviceLibraries.map { .product(name: $0.library, package: $0.package) }

/// What one suite needs beyond the others: auth's signs ID tokens as a provider would.
let extraTestDependencies: [String: [Target.Dependency]] = [
    "AuthServiceTests": [
        .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
    ]
]

let package = Package(
    name: "rampart",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "Packages/RampartModels"),
        .package(path: "Packages/NATSKit"),
        .package(path: "Packages/SodiumKit"),
        .package(path: "Packages/ServiceKit"),
        .package(path: "Packages/RateLimitKit"),
        .package(path: "Packages/TokenKit"),
        .package(path: "Packages/TestSupport"),
        .package(path: "Packages/Benchmarks"),
        .package(path: "Packages/Backup"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
        // The webhook tests' local receiver; already in the graph through the gateway.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        // Keys for the ID tokens auth's tests sign; already in the graph through auth.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    ] + services.map { .package(path: "services/\($0)") },
    targets: [
        .testTarget(
            name: "NATSKitTests",
            dependencies: [
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "TestSupport", package: "TestSupport"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TokenKitTests",
            dependencies: [.product(name: "TokenKit", package: "TokenKit"), .product(name: "SodiumKit", package: "SodiumKit")]
        ),
        .testTarget(
            name: "SodiumKitTests",
            dependencies: [.product(name: "SodiumKit", package: "SodiumKit")]
        ),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "TestSupport", package: "TestSupport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // What the service suites share: the cluster fixture, the gateway's HTTP helpers and the
        // protocol peers the tests start (SMTP, webhook receivers). Test code only.
        .target(
            name: "ServicesTestSupport",
            dependencies: servicesTestDependencies,
            path: "Tests/ServicesTestSupport",
            swiftSettings: [.enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility")]
        ),
    ]
        + serviceTestTargets.map { name in
            .testTarget(name: name, dependencies: servicesTestDependencies + ["ServicesTestSupport"] + (extraTestDependencies[name] ?? []))
        }
)
