#!/usr/bin/env bash
# The code's layout, as `make fmt` writes it: `swift format lint` in strict mode over every
# Swift file written by hand (generated protobuf code and the documents rendered into Swift
# string literals are left out), and one SQL idiom: interpolated queries, with SQL built from
# text (`unsafeSQL`) only in the migration runner and audit's query filter. `make test` runs it
# first.
set -euo pipefail
cd "$(dirname "$0")/.."
find Packages services Tests -name '*.swift' -not -path '*/.build/*' -not -path '*/Generated/*' \
    -not -name 'SecurityPolicyDocument.swift' -print0 |
    xargs -0 swift format lint --strict --configuration .swift-format
unsafe=$(grep -rln --include='*.swift' 'unsafeSQL' Packages services Tests |
    grep -v -e '/.build/' -e 'ServiceKit/Database/MigrationRunner.swift' -e 'AuditService/AuditQuery.swift' || true)
if [ -n "$unsafe" ]; then
    echo "lint: PostgresQuery(unsafeSQL:) outside the migration runner and audit's query filter; interpolate instead:" >&2
    echo "$unsafe" >&2
    exit 1
fi
