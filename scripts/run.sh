#!/usr/bin/env bash
# `make run`: everything on this machine. System packages, PostgreSQL and nats-server (with
# JetStream and per-service NATS users) on loopback with their data under .run/, a release
# build, then the eight services. Ctrl-C stops it all. Mail is written to .run/mail/ as .eml
# files (one per message; mail's log names each), not sent.
#
# For the API conformance run (scripts/api-conformance.sh): RAMPART_RUN_DIR (the data folder,
# .run), RAMPART_RUN_BUILD=debug (the debug executables `swift build --build-tests` made, not
# built again here) and RAMPART_RUN_OPS_BASE (the services' ops ports are base+1…base+8, 9100).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

services=(auth tenants permissions audit rate-limit webhooks gateway mail)
pg_port=${RAMPART_RUN_POSTGRES_PORT:-54329}
nats_port=${RAMPART_RUN_NATS_PORT:-4222}
gateway_port=${RAMPART_GATEWAY_PORT:-8080}
ops_base=${RAMPART_RUN_OPS_BASE:-9100}
run=${RAMPART_RUN_DIR:-$root/.run}
mkdir -p "$run/logs"

scripts/bootstrap.sh

# Generated once, kept private: the NATS and PostgreSQL password of each service.
secrets=$run/secrets.env
if [ ! -f "$secrets" ]; then
    umask 077
    for service in "${services[@]}"; do
        var=$(echo "$service" | tr 'a-z-' 'A-Z_')
        # nats-server reads a variable's value as configuration: one that starts with a digit
        # ("6e…") is taken for a number and the server refuses to start, so a letter goes first.
        echo "RAMPART_NATS_PASSWORD_$var=n$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
        echo "RAMPART_POSTGRES_PASSWORD_$var=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
    done >"$secrets"
    umask 022
fi
# The audit log's checkpoint signing key (an Ed25519 seed), added to older secrets files too.
if ! grep -q '^RAMPART_RUN_AUDIT_SIGNING_KEY=' "$secrets"; then
    (umask 077 && echo "RAMPART_RUN_AUDIT_SIGNING_KEY=run-1:$(head -c 32 /dev/urandom | base64 -w0)" >>"$secrets")
fi
# auth's key-encryption key: seals the token signing keys it stores.
if ! grep -q '^RAMPART_RUN_AUTH_KEY_ENCRYPTION_KEYS=' "$secrets"; then
    (umask 077 && echo "RAMPART_RUN_AUTH_KEY_ENCRYPTION_KEYS=run-1:$(head -c 32 /dev/urandom | base64 -w0)" >>"$secrets")
fi
# webhooks' key-encryption key: seals the endpoints' signing secrets.
if ! grep -q '^RAMPART_RUN_WEBHOOKS_KEY_ENCRYPTION_KEYS=' "$secrets"; then
    (umask 077 && echo "RAMPART_RUN_WEBHOOKS_KEY_ENCRYPTION_KEYS=run-1:$(head -c 32 /dev/urandom | base64 -w0)" >>"$secrets")
fi
# mail's token key pair (X25519): auth and tenants seal account tokens to the public half, and
# only mail, holding the secret half, opens them.
if ! grep -q '^RAMPART_RUN_MAIL_TOKEN_KEYS=' "$secrets"; then
    pem=$(openssl genpkey -algorithm X25519)
    (umask 077 && {
        echo "RAMPART_RUN_MAIL_TOKEN_KEYS=run-1:$(echo "$pem" | openssl pkey -outform DER | tail -c 32 | base64 -w0)"
        echo "RAMPART_RUN_MAIL_TOKEN_PUBLIC_KEY=run-1:$(echo "$pem" | openssl pkey -pubout -outform DER | tail -c 32 | base64 -w0)"
    } >>"$secrets")
    unset pem
fi
# Services added since the secrets file was made get their NATS password too.
for service in "${services[@]}"; do
    var=$(echo "$service" | tr 'a-z-' 'A-Z_')
    grep -q "^RAMPART_NATS_PASSWORD_$var=" "$secrets" ||
        (umask 077 && echo "RAMPART_NATS_PASSWORD_$var=n$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >>"$secrets")
done
set -a
# shellcheck disable=SC1090
. "$secrets"
set +a

# PostgreSQL must be able to reach its folder; when .run/ sits below a private folder (a
# checkout under /root), the cluster lives in /var/tmp and .run/postgres points to it.
pg_dir=$run/postgres
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$run" 2>/dev/null; then
    pg_dir=/var/tmp/rampart-postgres-$(echo "$root" | md5sum | cut -c1-12)
    ln -sfn "$pg_dir" "$run/postgres"
fi
scripts/infra.sh postgres-start "$pg_dir" "$pg_port"
socket=$pg_dir/socket
for service in "${services[@]}"; do
    [ "$service" = gateway ] || [ "$service" = rate-limit ] || [ "$service" = mail ] && continue
    var=$(echo "$service" | tr 'a-z-' 'A-Z_')
    name=rampart_$(echo "$service" | tr '-' '_')
    password_var=RAMPART_POSTGRES_PASSWORD_$var
    runuser -u postgres -- psql -X -q -h "$socket" -p "$pg_port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -v name="$name" -v password="${!password_var}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
done

scripts/infra.sh nats-start "$run/nats" "$nats_port" "$root/deploy/nats/nats-server.conf"

if [ "${RAMPART_RUN_BUILD:-release}" = debug ]; then
    bin=$(swift build --show-bin-path)
else
    echo "run: building (release)…"
    for service in "${services[@]}"; do
        swift build -c release --product "$service" 2>&1 | grep -E "error|warning: unre|Compiling|Build complete" | grep -v "^\[" || true
    done
    bin=$(swift build -c release --show-bin-path)
fi

pids=()
stop() {
    trap - INT TERM EXIT
    echo
    echo "run: stopping services…"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    scripts/infra.sh nats-stop "$run/nats"
    scripts/infra.sh postgres-stop "$pg_dir"
    echo "run: stopped"
}
trap stop INT TERM EXIT

for index in "${!services[@]}"; do
    service=${services[$index]}
    var=$(echo "$service" | tr 'a-z-' 'A-Z_')
    nats_password=RAMPART_NATS_PASSWORD_$var
    pg_password=RAMPART_POSTGRES_PASSWORD_$var
    own=()
    [ "$service" = audit ] && own=(RAMPART_AUDIT_SIGNING_KEY="$RAMPART_RUN_AUDIT_SIGNING_KEY")
    [ "$service" = webhooks ] && own=(RAMPART_WEBHOOKS_KEY_ENCRYPTION_KEYS="$RAMPART_RUN_WEBHOOKS_KEY_ENCRYPTION_KEYS")
    [ "$service" = mail ] && own=(RAMPART_MAIL_DIRECTORY="$run/mail" RAMPART_MAIL_FROM=no-reply@rampart.test RAMPART_MAIL_PUBLIC_URL="http://127.0.0.1:$gateway_port"
        RAMPART_MAIL_TOKEN_KEYS="$RAMPART_RUN_MAIL_TOKEN_KEYS")
    # SSO providers started on this machine (a test provider) are reachable; auth logs it at start.
    [ "$service" = auth ] && own=(RAMPART_AUTH_KEY_ENCRYPTION_KEYS="$RAMPART_RUN_AUTH_KEY_ENCRYPTION_KEYS" RAMPART_MAIL_TOKEN_PUBLIC_KEY="$RAMPART_RUN_MAIL_TOKEN_PUBLIC_KEY"
        RAMPART_AUTH_SSO_ALLOWED_NETWORKS=127.0.0.0/8,::1/128)
    [ "$service" = tenants ] && own=(RAMPART_MAIL_TOKEN_PUBLIC_KEY="$RAMPART_RUN_MAIL_TOKEN_PUBLIC_KEY")
    env "${own[@]}" RAMPART_NATS_URL="nats://127.0.0.1:$nats_port" RAMPART_NATS_USER="$service" RAMPART_NATS_PASSWORD="${!nats_password}" \
        RAMPART_POSTGRES_PORT="$pg_port" RAMPART_POSTGRES_PASSWORD="${!pg_password}" \
        RAMPART_OPS_HOST=127.0.0.1 RAMPART_OPS_PORT=$((ops_base + index + 1)) RAMPART_GATEWAY_HOST=127.0.0.1 RAMPART_GATEWAY_PORT="$gateway_port" \
        RAMPART_GATEWAY_PUBLIC_URL="http://127.0.0.1:$gateway_port" \
        "$bin/$service" >>"$run/logs/$service.log" 2>&1 &
    pids+=($!)
done

echo "run: waiting for the services to be ready…"
for index in "${!services[@]}"; do
    ready=
    port=$((ops_base + index + 1))
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "${pids[$index]}" 2>/dev/null || break
        sleep 0.1
    done
    if [ -n "$ready" ]; then
        echo "  ${services[$index]}: ready (ops http://127.0.0.1:$port/readyz)"
    else
        echo "  ${services[$index]}: NOT ready — see $run/logs/${services[$index]}.log" >&2
    fi
done
echo
echo "Rampart is running. Gateway: http://127.0.0.1:$gateway_port (try: curl http://127.0.0.1:$gateway_port/healthz)"
echo "Logs: $run/logs/. Mail (not sent): $run/mail/. Ctrl-C stops everything."
echo "For development, SSO providers on loopback are allowed (RAMPART_AUTH_SSO_ALLOWED_NETWORKS=127.0.0.0/8,::1/128);"
echo "register http://127.0.0.1:$gateway_port/v1/auth/sso/callback at your test provider."
wait
