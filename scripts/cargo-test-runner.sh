#!/usr/bin/env bash
# Cargo's runner for the test binaries of `make test` (see the Makefile): runs each binary as
# is, except the Data API emulator's own tests, which run without REDSHIFT_DATA_LOCAL_RECORD.
# They send PostgreSQL SQL to the emulator on purpose (pg_sleep, SET search_path, CREATE
# DATABASE, 'it\'s', two statements in one) to test the emulator itself; that is not SQL our
# code sends to Redshift, so it stays out of the recording the grammar gate reads.
# Cargo sets CARGO_PKG_NAME to the package of the binary it runs.
set -euo pipefail
if [ "${CARGO_PKG_NAME:-}" = redshift-data-local ]; then
  unset REDSHIFT_DATA_LOCAL_RECORD
fi
exec "$@"
