#!/usr/bin/env bash
# Run a command with DATABASE_URL pointing at a throwaway PostgreSQL cluster that is removed
# when the command exits. An existing DATABASE_URL is used as is.
#   scripts/with-local-pg.sh cargo test --workspace
set -euo pipefail
if [ -z "${DATABASE_URL:-}" ]; then
  # The watchdog follows this process, which `exec` turns into the command itself.
  eval "$("$(dirname "$0")/local-pg.sh" start --until-pid $$)"
  export DATABASE_URL PGHOST PGPORT PGUSER PGDATABASE LOCAL_PG_DIR
fi
exec "$@"
