#!/usr/bin/env bash
# `make proto`: regenerates Packages/RampartModels/Sources/RampartModels/Generated from proto/.
# protoc-gen-swift is built once (release, a few minutes) into .build-protoc/ and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
plugin=.build-protoc/release/protoc-gen-swift
if [ ! -x "$plugin" ]; then
    swift build -c release --package-path scripts/protoc-gen-swift --product protoc-gen-swift --scratch-path .build-protoc
fi
out=Packages/RampartModels/Sources/RampartModels/Generated
rm -f "$out"/*.pb.swift
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Public --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="$out" -I proto $(find proto -name '*.proto' | sort)
echo "proto: generated $(ls "$out" | wc -l) files in $out"
