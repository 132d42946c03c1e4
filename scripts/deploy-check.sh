#!/usr/bin/env bash
# The deploy check (part of `make test`): Kubernetes manifests against the Kubernetes schemas,
# the Dockerfile against what the executables link, compose and the NATS chart's values
# (scripts/deploy/check.py). kubernetes-validate, pinned, in the project's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(pwd)/.build-venv
version=1.37.0
if ! "$venv/bin/python" -c "import kubernetes_validate, yaml, sys; sys.exit(kubernetes_validate.__version__ != '$version')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$version" PyYAML
fi
"$venv/bin/python" scripts/deploy/check.py
