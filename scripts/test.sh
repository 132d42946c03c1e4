#!/usr/bin/env bash
# `make test`: real PostgreSQL and nats-server in a temporary folder, one build of everything
# with its tests, then every suite. Stops what it started even when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
# The layout first: it takes seconds, and a run should not end on it after the tests.
scripts/lint.sh
work=$(mktemp -d /tmp/rampart-test.XXXXXX)
cleanup() {
    # Servers that tests started and a crash left behind live under $work/tmp.
    pkill -f -- "-sd $work/tmp/" 2>/dev/null || true
    scripts/infra.sh nats-stop "$work/nats" || true
    scripts/infra.sh postgres-stop "$work/postgres" || true
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"

pg_port=$(scripts/infra.sh free-port)
nats_port=$(scripts/infra.sh free-port)
scripts/infra.sh postgres-start "$work/postgres" "$pg_port" test
scripts/infra.sh nats-start "$work/nats" "$nats_port"

export RAMPART_TEST_POSTGRES_HOST=127.0.0.1
export RAMPART_TEST_POSTGRES_PORT=$pg_port
export RAMPART_TEST_POSTGRES_USER=postgres
export RAMPART_TEST_NATS_URL=nats://127.0.0.1:$nats_port
export RAMPART_TEST_TMPDIR=$work/tmp
mkdir -p "$RAMPART_TEST_TMPDIR"

# The test peers that are real programs of their own: an SMTP server (aiosmtpd) for mail,
# OpenID providers (oidc-provider-mock, and a strict one on Authlib) and a DNS server (dnslib);
# and the console's browser journeys (Selenium driving Debian's Chromium, axe-core, pyotp for
# codes, zxing-cpp to read the QR code off the screen).
source scripts/venv.sh
venv_require aiosmtpd oidc-provider-mock Authlib dnslib selenium axe-core-python pyotp zxing-cpp pillow

swift build --build-tests
# The executables (the modules are built already): the audit loss test kills and restarts
# audit, the export tests run the offline verifier, the backup drill the backup tools, and the
# deploy check reads what each links.
for product in auth tenants permissions audit rate-limit webhooks gateway mail rampart-audit rampart-backup rampart-restore; do
    swift build --product "$product"
done
# Tests that compare timings (AUTH-5: an unknown address answers in the time a wrong password
# does; a sign-in during a sign-up burst within four times its quiet time) run after the
# others, alone: with every other suite running on two cores the noise exceeds the difference
# they look for. A filter runs what it picks, as it is.
quiet='AuthHTTPTests/noEnumeration|HardeningTests/signUpBurst'
# Swift Testing starts every suite at once; each starts services of its own, and on two cores
# that many at once made calls miss their deadlines. Eight tests at a time keep the cores busy.
export SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH=${SWT_EXPERIMENTAL_MAXIMUM_PARALLELIZATION_WIDTH:-8}
# The console journeys leave a screenshot of each page they walked.
rm -rf .build/test-output/console
# The console's browser journeys (one Chromium at a time) run after the parallel pass too: a
# browser on two busy cores slowed the other suites' deadlines past their bounds.
browser='ConsoleBrowserTests'
if [ $# -eq 0 ]; then
    swift test --skip-build --skip "$quiet|$browser"
    swift test --skip-build --filter "$browser"
    swift test --skip-build --filter "$quiet"
else
    swift test --skip-build "$@"
fi
[ -d .build/test-output/console ] && echo "test: the console's screenshots are in $(pwd)/.build/test-output/console"

# On a whole run (not when a filter picks tests): the deploy manifests, then the OpenAPI
# conformance run.
if [ $# -eq 0 ]; then
    scripts/deploy-check.sh
    scripts/api-conformance.sh
fi
