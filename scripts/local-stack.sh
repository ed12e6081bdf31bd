#!/usr/bin/env bash
# The whole local stack the functions and `cdc` run against:
#   PostgreSQL 15 (throwaway) ← redshift-data-local (the Redshift Data API; its COPY reads from moto) ; moto (S3)
#
#   eval "$(scripts/local-stack.sh up)"   # start; prints export lines for every setting
#   scripts/local-stack.sh down           # stop everything it started, remove its temp dirs
#
# Environment: CDC_CONFIG (default config/pipeline.toml) decides the target tables created;
# REDSHIFT_DATA_LOCAL_FAULTS is passed to the emulator; LOCAL_STACK_DIR (default .local) holds
# the state: stack.env (export lines), lambda.env (for `cargo lambda watch --env-file`), logs.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
state="${LOCAL_STACK_DIR:-$root/.local}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
config="$(cd "$root" && realpath "${CDC_CONFIG:-config/pipeline.toml}")"
venv="${VENV:-$root/.venv}"
die() { echo "local-stack: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() { # URL PID LOG
  for _ in $(seq 1 200); do
    python3 -c "import urllib.request; urllib.request.urlopen('$1', timeout=1)" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process $2 exited"; }
    sleep 0.1
  done
  cat "$3" >&2; die "$1 did not answer"
}

up() {
  if [ -f "$state/stack.env" ]; then
    # shellcheck disable=SC1091
    . "$state/stack.env"
    if kill -0 "${LOCAL_STACK_EMULATOR_PID:-0}" 2>/dev/null; then
      cat "$state/stack.env"
      return
    fi
    down >/dev/null 2>&1 || true
  fi
  mkdir -p "$state"
  (cd "$root" && cargo build -q --locked -p redshift-data-local -p cdc-cli) >&2
  eval "$("$root/scripts/local-pg.sh" start)"
  echo "export LOCAL_PG_DIR=$LOCAL_PG_DIR" >"$state/stack.env"
  "$target_dir/debug/cdc" ddl --config "$config" --dialect postgres "$root/events/01-patientinfo-snapshot.json" \
    | psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >&2
  # moto first: the emulator's COPY reads the staged objects from it.
  eval "$(VENV="$venv" "$root/scripts/local-s3.sh" start)"
  echo "export LOCAL_S3_PID=$LOCAL_S3_PID" >>"$state/stack.env"
  local port; port="$(free_port)"
  REDSHIFT_DATA_LOCAL_FAULTS="${REDSHIFT_DATA_LOCAL_FAULTS:-}" nohup "$target_dir/debug/redshift-data-local" \
    --listen "127.0.0.1:$port" --database-url "$DATABASE_URL" --s3-endpoint "$AWS_ENDPOINT_URL_S3" \
    >"$state/redshift-data-local.log" 2>&1 </dev/null &
  local emulator=$!
  echo "export LOCAL_STACK_EMULATOR_PID=$emulator" >>"$state/stack.env"
  wait_http "http://127.0.0.1:$port/__health" "$emulator" "$state/redshift-data-local.log"
  local bucket="cdc-dead-letter"
  python3 -c "import urllib.request as u; u.urlopen(u.Request('$AWS_ENDPOINT_URL_S3/$bucket', method='PUT'))"
  local settings=(
    "AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:$port"
    "AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3"
    "AWS_ACCESS_KEY_ID=test" "AWS_SECRET_ACCESS_KEY=test" "AWS_REGION=us-east-1" "AWS_EC2_METADATA_DISABLED=true"
    "DATABASE_URL=$DATABASE_URL"
    "CDC_CONFIG=$config"
    "REDSHIFT_WORKGROUP=local" "REDSHIFT_DATABASE=postgres"
    "DLQ_BUCKET=$bucket" "DLQ_PREFIX=dead-letter" "DLQ_ARCHIVE_PREFIX=archive"
    "REDSHIFT_COPY_ROLE_ARN=arn:aws:iam::111122223333:role/local-copy" "STAGING_PREFIX=staging"
    "MASKING_KEY=local-demo-masking-key-0123456789abcdef"
    "DEADLINE_MARGIN_MS=2000" "LOG_LEVEL=${LOG_LEVEL:-info}"
  )
  : >"$state/lambda.env"
  for pair in "${settings[@]}"; do
    echo "export $pair" >>"$state/stack.env"
    echo "$pair" >>"$state/lambda.env"
  done
  cat "$state/stack.env"
}

down() {
  [ -f "$state/stack.env" ] || { echo "local-stack: nothing to stop" >&2; return 0; }
  # shellcheck disable=SC1091
  . "$state/stack.env"
  [ -n "${LOCAL_STACK_EMULATOR_PID:-}" ] && kill "$LOCAL_STACK_EMULATOR_PID" 2>/dev/null || true
  [ -n "${LOCAL_S3_PID:-}" ] && "$root/scripts/local-s3.sh" stop "$LOCAL_S3_PID"
  [ -n "${LOCAL_PG_DIR:-}" ] && "$root/scripts/local-pg.sh" stop "$LOCAL_PG_DIR"
  rm -rf "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: local-stack.sh up | down" ;;
esac
