#!/bin/sh
# Runs once, when the PostgreSQL container initialises an empty data directory
# (docker-entrypoint-initdb.d). One database per service, each owned by its own login role,
# so that no service can read another's tables (the registry's holds the token signing keys).
# Passwords come from DUBAN_REGISTRY_DB_PASSWORD, DUBAN_PROGRESS_DB_PASSWORD and
# DUBAN_NOTIFIER_DB_PASSWORD.
set -eu

for service in registry progress notifier; do
  var="DUBAN_$(echo "$service" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password=$(printenv "$var" || true)
  if [ -z "$password" ]; then
    echo "init-databases: $var is not set" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v name="duban_$service" -v password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
