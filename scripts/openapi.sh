#!/usr/bin/env bash
# `make openapi`: writes the public API's OpenAPI 3.1 document from api/openapi.py, where it is
# edited, into the gateway's resources (api/openapi.json links there); the gateway serves it at
# /openapi.json and answers 405 from it. A test fails when the served document and the file
# differ.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 api/openapi.py >services/gateway/Sources/GatewayService/Resources/openapi.json
echo "openapi: wrote api/openapi.json (services/gateway/Sources/GatewayService/Resources/openapi.json)"
