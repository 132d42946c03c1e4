#!/usr/bin/env bash
# The OpenAPI conformance run (part of `make test`, or alone as `make test-api`): the eight
# services as `make run` starts them (the debug build `swift build --build-tests` made), then
# schemathesis generating valid and hostile requests for every operation in api/openapi.json.
# It fails on any 5xx, any status or content type the document does not list, and any
# response that does not match its schema. RAMPART_API_SEED runs another seed than the fixed
# one; RAMPART_API_SCHEMATHESIS_ARGS adds options (a HAR report, say); RAMPART_API_KEEP keeps
# the run's folder and logs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/bootstrap.sh
# schemathesis, pinned, in the project's virtual environment.
. scripts/venv.sh
venv_require schemathesis

# The services' executables, debug, next to the modules the test build made.
for service in auth tenants permissions audit rate-limit webhooks gateway mail; do
    swift build --product "$service" 2>&1 | grep -E "error" || true
done

work=$(mktemp -d /tmp/rampart-api.XXXXXX)
chmod 755 "$work"
run_pid=
cleanup() {
    if [ -n "$run_pid" ]; then
        kill -TERM "$run_pid" 2>/dev/null || true
        wait "$run_pid" 2>/dev/null || true
    fi
    # run.sh stops what it started, unless it failed before it could.
    scripts/infra.sh nats-stop "$work/run/nats" 2>/dev/null || true
    scripts/infra.sh postgres-stop "$work/run/postgres" 2>/dev/null || true
    [ -n "${RAMPART_API_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

gateway_port=$(scripts/infra.sh free-port)
export RAMPART_RUN_DIR=$work/run RAMPART_RUN_BUILD=debug
export RAMPART_RUN_POSTGRES_PORT=$(scripts/infra.sh free-port) RAMPART_RUN_NATS_PORT=$(scripts/infra.sh free-port)
export RAMPART_GATEWAY_PORT=$gateway_port RAMPART_RUN_OPS_BASE=$((20000 + RANDOM % 12000))
# Thousands of requests from 127.0.0.1 within minutes: the limits are lifted and the address is
# never banned, so that the run reaches the routes rather than 429. The limits have tests of
# their own; here they would only hide the routes.
export RAMPART_RATELIMIT_POLICY_API=1000/1 RAMPART_RATELIMIT_POLICY_LOGIN=1000/1 RAMPART_RATELIMIT_POLICY_LOGIN_ACCOUNT=1000/1
export RAMPART_RATELIMIT_POLICY_REGISTER=1000/1 RAMPART_RATELIMIT_POLICY_REGISTER_DAILY=1000/1
export RAMPART_RATELIMIT_ALLOWLIST=127.0.0.1/32 RAMPART_AUTH_BCRYPT_COST=10
scripts/run.sh >"$work/run.log" 2>&1 &
run_pid=$!

base=http://127.0.0.1:$gateway_port
# run.sh says so once every service answers /readyz.
for _ in $(seq 1 900); do
    grep -q "Rampart is running" "$work/run.log" && break
    kill -0 "$run_pid" 2>/dev/null || break
    sleep 0.2
done
if ! grep -q "Rampart is running" "$work/run.log" || grep -q "NOT ready" "$work/run.log"; then
    echo "api: the services did not become ready" >&2
    cat "$work/run.log" >&2
    tail -n 20 "$work"/run/logs/*.log >&2 || true
    exit 1
fi

# A signed-in owner of a fresh tenant: the run's credential and the tenant its paths name.
sign_up() {
    local email=$1 number=$2
    curl -fsS -X POST "$base/v1/auth/register" -H 'Content-Type: application/json' \
        -d "{\"email\":\"$email\",\"password\":\"Tr0ub4dor&3xkcd!\",\"name\":\"Ada\",\"organization\":{\"name\":\"Org $number\",\"country\":\"FR\",\"registration_number\":\"$number\"}}" >/dev/null
    # AUTH-11: verified by the link in the mail run.sh wrote, so the run reaches what needs the
    # proof (API keys, webhook endpoints, invitations) rather than its 403.
    local token=""
    for _ in $(seq 1 100); do
        token=$(python3 scripts/mail-token.py "$work/run/mail" "$email" verify-email) && break
        sleep 0.2
    done
    curl -fsS -X POST "$base/v1/auth/email/verify" -H 'Content-Type: application/json' -d "{\"token\":\"$token\"}" >/dev/null
    for _ in $(seq 1 100); do
        reply=$(curl -sS -X POST "$base/v1/auth/login" -H 'Content-Type: application/json' \
            -d "{\"email\":\"$email\",\"password\":\"Tr0ub4dor&3xkcd!\"}")
        if echo "$reply" | grep -q access_token; then echo "$reply"; return; fi
        sleep 0.2  # the tenant is still being provisioned
    done
    echo "api: cannot sign in as $email: $reply" >&2
    exit 1
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

schemathesis() {
    local token=$1 tenant=$2
    shift 2
    RAMPART_API_TENANT=$tenant "$venv/bin/schemathesis" --config-file api/schemathesis.toml \
        run "$base/openapi.json" --url "$base" -H "Authorization: Bearer $token" \
        ${RAMPART_API_SEED:+--seed "$RAMPART_API_SEED"} ${RAMPART_API_SCHEMATHESIS_ARGS:-} "$@"
}

status=0
first=$(sign_up ada@lovelace.example "732 829 320 00074")
# Everything but the operations that end the run's own session or tenant (or isolate it) (schemathesis finds the
# session's ID in GET /v1/auth/sessions and would end it).
ending=(logout revokeSession deleteTenant isolateTenant)
schemathesis "$(echo "$first" | field access_token)" "$(echo "$first" | field tenant_id)" \
    "${ending[@]/#/--exclude-operation-id=}" || status=1
# Those, with a credential and a tenant of their own.
second=$(sign_up eve@evil.example "443 061 841 00047")
schemathesis "$(echo "$second" | field access_token)" "$(echo "$second" | field tenant_id)" \
    "${ending[@]/#/--include-operation-id=}" || status=1

if [ "$status" -ne 0 ]; then
    echo "api: conformance failures (service logs follow)" >&2
    tail -n 50 "$work"/run/logs/*.log >&2 || true
fi
exit $status
