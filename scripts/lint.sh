#!/usr/bin/env bash
# The code's layout, as `make fmt` writes it: `swift format lint` in strict mode over every
# Swift file written by hand (generated protobuf code and the documents rendered into Swift
# string literals are left out). `make test` runs it first.
set -euo pipefail
cd "$(dirname "$0")/.."
find Packages services Tests -name '*.swift' -not -path '*/.build/*' -not -path '*/Generated/*' \
    -not -name 'OpenAPIDocument.swift' -not -name 'SecurityPolicyDocument.swift' -print0 |
    xargs -0 swift format lint --strict --configuration .swift-format
