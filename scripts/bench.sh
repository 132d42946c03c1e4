#!/usr/bin/env bash
# `make bench`: release builds only. Compiles the C baseline against nats.c, then runs
# rampart-bench, which starts its own nats-servers and rate-limit replicas on loopback and prints
# one table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
mkdir -p .build/bench
# shellcheck disable=SC2046
gcc -O2 -o .build/bench/nats_reqrep scripts/bench/nats_reqrep.c $(pkg-config --cflags --libs libnats)
swift build -c release --product rampart-bench
swift build -c release --product rate-limit
bin=$(swift build -c release --show-bin-path)
"$bin/rampart-bench" .build/bench/nats_reqrep "$bin/rate-limit"
