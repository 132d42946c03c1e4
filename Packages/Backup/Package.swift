// swift-tools-version:6.2
// OPS-2: `rampart-backup` dumps every service database, encrypts each dump and rotates;
// `rampart-restore` verifies a backup and restores it into an empty cluster.
import PackageDescription

let package = Package(
    name: "Backup",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BackupKit", targets: ["BackupKit"]),
        .executable(name: "rampart-backup", targets: ["rampart-backup"]),
        .executable(name: "rampart-restore", targets: ["rampart-restore"]),
    ],
    dependencies: [
        .package(path: "../ServiceKit"),
        .package(path: "../SodiumKit"),
        .package(path: "../RampartModels"),
    ],
    targets: [
        .target(
            name: "BackupKit",
            dependencies: [
                .product(name: "ServiceKit", package: "ServiceKit"),
                .product(name: "SodiumKit", package: "SodiumKit"),
                .product(name: "RampartModels", package: "RampartModels"),
            ],
            swiftSettings: [
                .enableUpcomingFeature("ExistentialAny"), .enableUpcomingFeature("MemberImportVisibility"),
                .enableUpcomingFeature("InternalImportsByDefault"),
            ]
        ),
        .executableTarget(name: "rampart-backup", dependencies: ["BackupKit"]),
        .executableTarget(name: "rampart-restore", dependencies: ["BackupKit"]),
    ]
)
