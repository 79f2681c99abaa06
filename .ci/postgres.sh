#!/usr/bin/env bash
# Installs (Debian's package) and starts a PostgreSQL server for the run store's tests, with a
# role `gauntlet` (password `gauntlet`) on 127.0.0.1:5432; prints the URL for
# GAUNTLET_TEST_POSTGRES. Needs root. Usage: export GAUNTLET_TEST_POSTGRES=$(.ci/postgres.sh)
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
  pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >&2 2>&1 || true
for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
pg_isready -h 127.0.0.1 -p 5432 >&2
su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gauntlet') THEN CREATE ROLE gauntlet LOGIN CREATEDB PASSWORD 'gauntlet'; END IF; END \\\$\\\$;\"" >&2
echo "postgres://gauntlet:gauntlet@127.0.0.1:5432/postgres"
