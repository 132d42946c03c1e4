#!/usr/bin/env bash
# Installs the system packages Rampart builds, runs, tests and benchmarks with (Debian), only when
# one is missing.
set -euo pipefail

packages=(libnats-dev nats-server libsodium-dev libpq-dev libcrypt-dev postgresql postgresql-client protobuf-compiler libqrencode-dev pkg-config gcc curl openssl wrk zbar-tools librsvg2-bin chromium chromium-driver)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "bootstrap: swift is not on PATH (Swift 6.2 or later is needed)" >&2; exit 1; }
