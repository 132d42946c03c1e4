// swift-tools-version:6.0
// Builds only `protoc-gen-swift` for `make proto`. Kept apart from the workspace so the
// plugin (slow to build) never enters the normal build graph.
import PackageDescription

let package = Package(
    name: "protoc-gen-swift-tool",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0")
    ]
)
