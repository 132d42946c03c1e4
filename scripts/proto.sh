#!/usr/bin/env bash
# `make proto`: regenerates Packages/RampartModels/Sources/RampartModels/Generated from proto/.
# The plugin is swift-protobuf's own protoc-gen-swift, built from the version the workspace
# resolves (so the generated code always matches the runtime it compiles against): a debug
# build of that one product, about half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
swift build --product protoc-gen-swift
plugin=.build/debug/protoc-gen-swift
out=Packages/RampartModels/Sources/RampartModels/Generated
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="$out" -I proto $(find proto -name '*.proto' | sort)
echo "proto: generated $(ls "$out" | wc -l) files in $out"
