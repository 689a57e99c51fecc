#!/usr/bin/env bash
# Test-only PostgreSQL for the hub's second backend: installs Debian's postgresql if missing, starts a
# private cluster on 127.0.0.1 (no systemd needed), creates the test database, and prints its SQLAlchemy
# URL on stdout (everything else goes to stderr). Idempotent: a running cluster is reused.
#   KIOSK_TEST_PG_URL=$(.ci/postgres.sh) .venv/bin/pytest tests/test_hub_postgres.py
set -euo pipefail

PORT=${KIOSK_TEST_PG_PORT:-54329}
DATA=${KIOSK_TEST_PG_DATA:-/var/tmp/kiosk-test-pg}
DB=kiosk_test

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
fi
BIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# The server refuses to run as root: as root, act as the postgres user the package created.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -s "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"
  [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 >&2
fi
if ! as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA" start >&2
fi
if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
  as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/$DB"
