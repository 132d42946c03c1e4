#!/usr/bin/env bash
# Creates each service's role and database, once, in a new PostgreSQL data folder (the official
# image runs /docker-entrypoint-initdb.d/*.sh as the superuser). Passwords come from
# RAMPART_POSTGRES_PASSWORD_<SERVICE>. Kubernetes does the same with CloudNativePG (k8s/base/postgres.yaml).
set -euo pipefail
for service in auth tenants permissions audit webhooks; do
    name=rampart_$service
    password_var=RAMPART_POSTGRES_PASSWORD_$(echo "$service" | tr 'a-z' 'A-Z')
    psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres \
        -v name="$name" -v password="${!password_var:?$password_var is required}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name') \gexec
SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', :'name') \gexec
SQL
done
