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
        .package(path: "../../Packages/SodiumKit"),
        .package(path: "../../Packages/NATSKit"),
        .package(path: "../../Packages/RateLimitKit"),
        .package(path: "../../Packages/TokenKit"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.8.0"),
        // HMAC-SHA-1 for TOTP (RFC 6238) and the ID tokens' signatures (RSA, ECDSA, Ed25519), which
        // libsodium does not all offer; already in the graph.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
    ],
    targets: [
        // libxcrypt's bcrypt (crypt_rn): as fast as HummingbirdBcrypt's C or a little faster,
        // and part of every Debian system (see README, "Passwords").
        .systemLibrary(
            name: "CCrypt",
            pkgConfig: "libxcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        // libqrencode: the QR code of a TOTP secret's otpauth URI (MFA-1).
        .systemLibrary(
            name: "CQREncode",
            pkgConfig: "libqrencode",
            providers: [.apt(["libqrencode-dev"])]
        ),
        // glibc's resolver (res_nquery, ns_parserr): the TXT records that prove a tenant owns a
        // domain (SSO-3), from the system's resolvers or RAMPART_DNS_SERVERS.
        .systemLibrary(name: "CResolv"),
        .target(
            name: "AuthService",
            dependencies: [
                "CCrypt",
                "CQREncode",
                "CResolv",
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "GuardedHTTP", package: "ServiceKit"),
                .product(name: "RampartModels", package: "RampartModels"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "NATSKit", package: "NATSKit"),
                .product(name: "RateLimitKit", package: "RateLimitKit"),
                .product(name: "TokenKit", package: "TokenKit"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RSA, for the ID tokens of SSO providers (SSO-1).
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
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
