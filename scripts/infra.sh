#!/usr/bin/env bash
# Local infrastructure on loopback: a PostgreSQL cluster and a nats-server with JetStream, each in
# a folder of its own. Used by `make run` (data under .run/) and `make test` (a temporary folder).
#
#   infra.sh postgres-start DIR PORT [test|bench]
#                                             initdb if needed, start; "test" trades durability for
#                                             speed, "bench" keeps it; both trust loopback (throwaway)
#   infra.sh postgres-stop DIR
#   infra.sh nats-start DIR PORT [CONFIG]      with JetStream storage in DIR/jetstream
#   infra.sh nats-stop DIR
#   infra.sh free-port
set -euo pipefail

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$bin" ] || { echo "infra: PostgreSQL is not installed (run scripts/bootstrap.sh)" >&2; exit 1; }
    echo "$bin"
}

# PostgreSQL refuses to run as root: it runs as Debian's `postgres` user, which must own its folder.
as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; elif [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_for_port() {
    local port=$1 name=$2
    # Up to 30 s: a machine just done with a parallel test run can be slow to start a server.
    for _ in $(seq 1 600); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "infra: $name did not start on port $port" >&2
    return 1
}

case "${1:-}" in
postgres-start)
    dir=$2 port=$3 mode=${4:-}
    bin=$(pg_bin)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    if ! as_postgres test -w "$dir"; then
        echo "infra: the postgres user cannot write $dir (is a parent folder private?)" >&2
        exit 1
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_postgres "$bin/initdb" -D "$dir/data" -U postgres -A trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; exit 1; }
        mkdir -p "$dir/socket"
        [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/socket"
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "unix_socket_directories = '$dir/socket'"
            if [ "$mode" = test ]; then
                # The suites run side by side, each cluster with a pool per service: with the SSO
                # suites, 300 ran out ("too many clients already").
                echo "max_connections = 800"
                # Test data is thrown away: durability buys nothing there.
                echo "fsync = off"
                echo "synchronous_commit = off"
                echo "full_page_writes = off"
            else
                echo "max_connections = 300"
            fi
        } >>"$dir/data/postgresql.conf"
        if [ "$mode" = test ] || [ "$mode" = bench ]; then
            # A test or bench cluster lives in a private temporary folder for one run.
            printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/data/pg_hba.conf"
        else
            # The superuser only through the private socket; every service role with its password.
            printf 'local all postgres trust\nhost all postgres 127.0.0.1/32 reject\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$dir/data/pg_hba.conf"
        fi
    fi
    if ! as_postgres "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -o "-p $port" -l "$dir/postgres.log" -w start >/dev/null
    fi
    wait_for_port "$port" PostgreSQL
    ;;
postgres-stop)
    dir=$2
    [ -d "$dir/data" ] || exit 0
    as_postgres "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
nats-start)
    dir=$2 port=$3 config=${4:-}
    mkdir -p "$dir/jetstream"
    if [ -f "$dir/nats.pid" ] && kill -0 "$(cat "$dir/nats.pid")" 2>/dev/null; then exit 0; fi
    args=(-a 127.0.0.1 -p "$port" -js -sd "$dir/jetstream" -l "$dir/nats.log" -P "$dir/nats.pid")
    [ -n "$config" ] && args=(-c "$config" "${args[@]}")
    # Once in a while, right after a parallel test run, a start fails: say why, and try again.
    for attempt in 1 2 3; do
        nohup nats-server "${args[@]}" >"$dir/nats.out" 2>&1 &
        wait_for_port "$port" nats-server && exit 0
        echo "infra: nats-server start $attempt of 3 failed; its output and log:" >&2
        tail -n 20 "$dir/nats.out" "$dir/nats.log" >&2 2>/dev/null || true
        kill "$(cat "$dir/nats.pid" 2>/dev/null)" 2>/dev/null || true
        sleep 1
    done
    exit 1
    ;;
nats-stop)
    dir=$2
    if [ -f "$dir/nats.pid" ]; then
        pid=$(cat "$dir/nats.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        rm -f "$dir/nats.pid"
    fi
    ;;
free-port)
    while :; do
        # Below the kernel's ephemeral range (32768 and up), where any outgoing connection may
        # hold the port by the time the server binds it.
        port=$((20000 + RANDOM % 12000))
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; exit 0; }
    done
    ;;
*)
    echo "usage: $0 postgres-start|postgres-stop|nats-start|nats-stop|free-port ..." >&2
    exit 2
    ;;
esac
