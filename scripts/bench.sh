#!/usr/bin/env bash
# `make bench`: release builds only. Compiles the C baseline against nats.c, starts a
# PostgreSQL of its own (as `make test` does), then runs rampart-bench, which starts its own
# nats-servers and the release service executables on loopback and prints one table.
# BENCH_SUITES=rate-limit,audit,tenants,auth,permissions,gateway,webhooks, BENCH_AUDIT_EVENTS (1,000,000),
# BENCH_TENANTS (200), BENCH_TENANTS_CROWD (2,000), BENCH_LOGINS (96), BENCH_GATEWAY_CALLS (8,000),
# BENCH_PERMISSION_MEMBERS (100: its square is the bindings), BENCH_PERMISSION_CHECKS (40,000) and
# BENCH_GATEWAY_SECONDS (10, each of the three gateway loads), BENCH_WEBHOOK_DELIVERIES (20,000)
# narrow a run. The gateway suite
# loads with wrk (Debian's, which bootstrap installs).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
mkdir -p .build/bench
# shellcheck disable=SC2046
gcc -O2 -o .build/bench/nats_reqrep scripts/bench/nats_reqrep.c $(pkg-config --cflags --libs libnats)
for product in rampart-bench rate-limit audit rampart-audit auth tenants permissions webhooks gateway; do
    swift build -c release --product "$product"
done
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d /tmp/rampart-bench.XXXXXX)
bench_pid=
cleanup() {
    # The bench and every service it started share a process group: a bench that crashed
    # must not leave services running.
    [ -n "$bench_pid" ] && kill -- "-$bench_pid" 2>/dev/null || true
    pkill -f -- "-sd $work/tmp/" 2>/dev/null || true
    scripts/infra.sh postgres-stop "$work/postgres" || true
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
pg_port=$(scripts/infra.sh free-port)
scripts/infra.sh postgres-start "$work/postgres" "$pg_port" bench  # durable: fsync on, as in production
export RAMPART_TEST_POSTGRES_HOST=127.0.0.1
export RAMPART_TEST_POSTGRES_PORT=$pg_port
export RAMPART_TEST_POSTGRES_USER=postgres
export RAMPART_TEST_TMPDIR=$work/tmp
mkdir -p "$RAMPART_TEST_TMPDIR"

setsid "$bin/rampart-bench" .build/bench/nats_reqrep "$bin" &
bench_pid=$!
wait "$bench_pid"
