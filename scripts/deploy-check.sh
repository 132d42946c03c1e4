#!/usr/bin/env bash
# The deploy check (part of `make test`): Kubernetes manifests against the Kubernetes schemas,
# the Dockerfile against what the executables link, compose and the NATS chart's values
# (scripts/deploy/check.py). kubernetes-validate, pinned, in the project's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
venv_require kubernetes-validate
"$venv/bin/python" scripts/deploy/check.py
