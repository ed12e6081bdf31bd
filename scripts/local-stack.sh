#!/usr/bin/env bash
# The whole local stack the functions and `cdc` run against:
#   PostgreSQL 15 (throwaway) ← redshift-data-local (the Redshift Data API; its COPY reads from moto) ; moto (S3)
#
#   eval "$(scripts/local-stack.sh up)"   # start; prints export lines for every setting
#   scripts/local-stack.sh status         # which parts answer (exit 0: all of them)
#   scripts/local-stack.sh down           # stop everything it started, remove its temp dirs
#
# `up` brings the whole stack up or, when a step fails, stops what it had started, removes its
# state and says which step failed (exit 1; exit 2 for a missing venv or config, before
# anything starts). A stack already running is reused only when every part answers
# (PostgreSQL accepts a connection, the emulator's health check and moto's API answer, from
# the processes it started); otherwise `up` names the parts that do not, stops the rest and
# starts a new one. Progress goes to stderr, the export lines alone to stdout.
#
# Environment: CDC_CONFIG (default config/pipeline.toml) decides the target tables created;
# REDSHIFT_DATA_LOCAL_FAULTS is passed to the emulator; VENV (default .venv) holds moto;
# LOCAL_STACK_DIR (default .local) holds the state: stack.env (export lines), lambda.env (for
# `cargo lambda watch --env-file`), logs. Tested by scripts/test-local-stack.sh.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
state="${LOCAL_STACK_DIR:-$root/.local}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${VENV:-$root/.venv}"
# What stack.env sets; cleared before it is read, so that a caller's own exports (a previous
# `eval`) are never taken for the state of this stack.
state_vars=(LOCAL_STACK_COMPLETE LOCAL_STACK_CONFIG_ID LOCAL_PG_DIR DATABASE_URL PGHOST PGPORT PGUSER PGDATABASE
  LOCAL_S3_PID LOCAL_S3_LOG AWS_ENDPOINT_URL_S3 LOCAL_STACK_EMULATOR_PID AWS_ENDPOINT_URL_REDSHIFT_DATA)

say() { echo "local-stack: $*" >&2; }
die() { say "$*"; exit 1; }
usage() { say "usage: local-stack.sh up | status | down"; exit 2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Whether PID is alive and runs NAME. A PID recorded in stack.env may belong to an unrelated
# process by now; nothing is signalled, or trusted to answer, on the number alone.
owned() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q -- "$2"
}
answers() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null; }

load_state() {
  unset "${state_vars[@]}"
  # shellcheck disable=SC1091
  [ -f "$state/stack.env" ] && . "$state/stack.env"
  return 0
}

# What is wrong with the recorded stack, "; "-separated (empty: every part answers). Run in a
# subshell: it loads the state into its own environment.
dead_parts() (
  load_state
  dead=()
  [ "${LOCAL_STACK_COMPLETE:-}" = 1 ] || dead+=("its last up did not finish")
  [ -n "${DATABASE_URL:-}" ] && PGCONNECT_TIMEOUT=2 psql -XAtq -c 'SELECT 1' "$DATABASE_URL" >/dev/null 2>&1 \
    || dead+=("PostgreSQL does not answer")
  { owned "${LOCAL_STACK_EMULATOR_PID:-}" redshift-data-local && answers "${AWS_ENDPOINT_URL_REDSHIFT_DATA:-}/__health"; } \
    || dead+=("redshift-data-local does not answer")
  { owned "${LOCAL_S3_PID:-}" moto_server && answers "${AWS_ENDPOINT_URL_S3:-}/moto-api/"; } \
    || dead+=("moto S3 does not answer")
  (IFS=";"; echo "${dead[*]}") | sed 's/;/; /g'
)

stop_pid() { # PID NAME: SIGTERM, then SIGKILL after 5 s; only if PID still runs NAME
  owned "$1" "$2" || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do owned "$1" "$2" || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# Stops every part stack.env records and removes the state; prints what it stopped.
stop_all() (
  load_state
  stopped=()
  if owned "${LOCAL_STACK_EMULATOR_PID:-}" redshift-data-local; then
    stop_pid "$LOCAL_STACK_EMULATOR_PID" redshift-data-local
    stopped+=("redshift-data-local")
  fi
  if owned "${LOCAL_S3_PID:-}" moto_server; then
    stop_pid "$LOCAL_S3_PID" moto_server
    stopped+=("moto S3")
  fi
  [ -n "${LOCAL_S3_LOG:-}" ] && rm -f "$LOCAL_S3_LOG"
  if [ -n "${LOCAL_PG_DIR:-}" ] && [ -d "$LOCAL_PG_DIR" ]; then
    "$root/scripts/local-pg.sh" stop "$LOCAL_PG_DIR"
    stopped+=("PostgreSQL")
  fi
  rm -rf "$state"
  (IFS=","; echo "${stopped[*]:-nothing}") | sed 's/,/, /g'
)

record() { echo "$1" >>"$state/stack.env"; }

wait_http() { # URL PID LOG
  for _ in $(seq 1 200); do
    answers "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "process $2 exited"; }
    sleep 0.1
  done
  cat "$3" >&2; die "$1 did not answer within 20 s"
}

# Runs on every exit of `up` until it has finished: stops what it had started.
up_failed() {
  local status=$?
  trap - EXIT
  [ "$status" = 0 ] && status=1
  local stopped; stopped="$(stop_all)"
  say "up failed while $step; stopped what it had started: $stopped"
  exit "$status"
}

# The config a stack was made for: its path and content digest (its tables are that config's).
config_id() { # CONFIG
  if [ "$1" = default ]; then echo default; else echo "$1:$(sha256sum "$1" | cut -d' ' -f1)"; fi
}

up() {
  local config="${CDC_CONFIG:-config/pipeline.toml}"
  if [ "$config" != default ]; then
    config="$(cd "$root" && realpath -e "$config" 2>/dev/null)" || { say "CDC_CONFIG: no such file: ${CDC_CONFIG:-config/pipeline.toml}"; exit 2; }
  fi
  if [ -f "$state/stack.env" ]; then
    local dead; dead="$(dead_parts)"
    local made_for; made_for="$(sed -n 's/^export LOCAL_STACK_CONFIG_ID=//p' "$state/stack.env")"
    if [ -n "$dead" ]; then
      say "the stack in $state is not whole ($dead); stopped what was left of it ($(stop_all)), starting a new one"
    elif [ "$made_for" != "$(config_id "$config")" ]; then
      # Its tables are another config's (or an older version of this one's).
      say "the stack in $state was made for another CDC_CONFIG (or an older version of it); stopped it ($(stop_all)), starting a new one"
    else
      say "reusing the running stack in $state (PostgreSQL, redshift-data-local and moto S3 answer)"
      cat "$state/stack.env"
      return 0
    fi
  fi

  # What `up` needs, checked before anything starts.
  [ -x "$venv/bin/moto_server" ] || {
    say "moto_server not found in $venv (VENV): install it with scripts/install-deps.sh (or run \`make test\`)"
    exit 2
  }
  for tool in python3 psql cargo; do
    command -v "$tool" >/dev/null || { say "$tool not found: run scripts/install-deps.sh"; exit 2; }
  done

  mkdir -p "$state"
  : >"$state/stack.env"
  step="starting"
  trap up_failed EXIT
  trap 'exit 130' INT TERM

  step="building redshift-data-local and cdc"
  say "[1/5] $step (cargo)"
  (cd "$root" && cargo build --locked -p redshift-data-local -p cdc-cli) >&2

  step="starting PostgreSQL"
  say "[2/5] $step, creating the target tables of $config"
  local pg; pg="$("$root/scripts/local-pg.sh" start)"
  eval "$pg"
  record "$pg"
  step="creating the target tables and their views (cdc ddl --views of $config)"
  "$target_dir/debug/cdc" ddl --config "$config" --dialect postgres --views "$root/events/01-patientinfo-snapshot.json" \
    | psql -q -v ON_ERROR_STOP=1 "$DATABASE_URL" >&2

  # moto first: the emulator's COPY reads the staged objects from it.
  step="starting moto S3 (from $venv)"
  say "[3/5] $step"
  local s3; s3="$(VENV="$venv" "$root/scripts/local-s3.sh" start)"
  eval "$s3"
  record "$s3"

  step="starting redshift-data-local"
  say "[4/5] $step"
  local port; port="$(free_port)"
  REDSHIFT_DATA_LOCAL_FAULTS="${REDSHIFT_DATA_LOCAL_FAULTS:-}" nohup "$target_dir/debug/redshift-data-local" \
    --listen "127.0.0.1:$port" --database-url "$DATABASE_URL" --s3-endpoint "$AWS_ENDPOINT_URL_S3" \
    >"$state/redshift-data-local.log" 2>&1 </dev/null &
  local emulator=$!
  record "export LOCAL_STACK_EMULATOR_PID=$emulator"
  wait_http "http://127.0.0.1:$port/__health" "$emulator" "$state/redshift-data-local.log"

  step="creating the dead-letter bucket"
  say "[5/5] $step, writing $state/stack.env"
  local bucket="cdc-dead-letter"
  python3 -c 'import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method="PUT"), timeout=10)' \
    "$AWS_ENDPOINT_URL_S3/$bucket"
  local settings=(
    "AWS_ENDPOINT_URL_REDSHIFT_DATA=http://127.0.0.1:$port"
    "AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL_S3"
    # moto serves AWS Glue's Schema Registry on the same port: Avro records' schemas
    # (README "Avro records behind a schema registry"); `cdc make-event --glue-registry`
    # registers them there.
    "AWS_ENDPOINT_URL_GLUE=$AWS_ENDPOINT_URL_S3" "SCHEMA_REGISTRY=glue"
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
    record "export $pair"
    echo "$pair" >>"$state/lambda.env"
  done
  record "export LOCAL_STACK_CONFIG_ID=$(config_id "$config")"
  # Last: a stack.env without this line is from an `up` that did not finish, never reused.
  record "export LOCAL_STACK_COMPLETE=1"
  trap - EXIT INT TERM
  say "up: PostgreSQL, redshift-data-local and moto S3 answer"
  cat "$state/stack.env"
}

status() {
  [ -f "$state/stack.env" ] || { say "no stack in $state"; return 1; }
  local dead; dead="$(dead_parts)"
  [ -z "$dead" ] || { say "the stack in $state is not whole: $dead"; return 1; }
  say "the stack in $state is whole: PostgreSQL, redshift-data-local and moto S3 answer"
}

down() {
  [ -f "$state/stack.env" ] || { say "nothing to stop"; return 0; }
  say "stopped: $(stop_all)"
}

case "${1:-}" in
  up) [ $# = 1 ] || usage; up ;;
  status) [ $# = 1 ] || usage; status ;;
  down) [ $# = 1 ] || usage; down ;;
  *) usage ;;
esac
