#!/usr/bin/env bash
# Tests scripts/local-stack.sh against the real parts (PostgreSQL, redshift-data-local, moto),
# in a state directory of its own (LOCAL_STACK_DIR), part of `make test`:
#   1. a missing venv: exit 2, says so, starts nothing;
#   2. a moto that fails after PostgreSQL is up: exit 1, names the step, stops PostgreSQL;
#   3. a whole stack: exit 0, export lines, every part started and answering (`status`);
#   4. `up` again: the same stack reused, nothing started;
#   5. the emulator killed, then moto killed: `status` names the dead part, `up` names it,
#      stops what was left and starts a whole new stack;
#   5b. a whole stack made for another CDC_CONFIG: replaced;
#   6. `down`: everything stopped, state removed; `down` again: nothing to stop; bad usage: exit 2.
# Which processes an invocation left: each `local-stack.sh` call gets a tag of its own in its
# environment (LOCAL_STACK_TEST_TAG), which every process it starts inherits; the processes
# still carrying a tag are what that call left. On a failure the test stops what it started
# (by PID) and exits 1.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export VENV="${VENV:-$root/.venv}"
work="$(mktemp -d -t test-local-stack.XXXXXX)"
export LOCAL_STACK_DIR="$work/state"
run=0
checks=0

tagged() { # the PIDs of processes whose environment has LOCAL_STACK_TEST_TAG=$1
  local p
  for p in /proc/[0-9]*; do
    if grep -qsxz "LOCAL_STACK_TEST_TAG=$1" "$p/environ"; then echo "${p#/proc/}"; fi
  done
}
names_of() { local pid; for pid in "$@"; do tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true; echo; done; }

cleanup() {
  local status=$?
  "$root/scripts/local-stack.sh" down >/dev/null 2>&1 || true
  local tag pid
  for tag in $(seq 1 "$run"); do
    for pid in $(tagged "test-$$-$tag"); do kill "$pid" 2>/dev/null || true; done
  done
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

fail() { echo "test-local-stack: FAIL: $*" >&2; [ -s "$work/err" ] && sed 's/^/  stderr: /' "$work/err" >&2; exit 1; }
ok() { checks=$((checks + 1)); echo "test-local-stack: ok: $*"; }

# stack ARGS…: runs local-stack.sh with a new tag; sets $rc, $tag, $work/out and $work/err.
stack() {
  run=$((run + 1))
  tag="test-$$-$run"
  rc=0
  LOCAL_STACK_TEST_TAG="$tag" "$root/scripts/local-stack.sh" "$@" >"$work/out" 2>"$work/err" || rc=$?
}
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit $rc, want $1"; }
expect_err() { grep -qF -- "$1" "$work/err" || fail "$2: stderr lacks \"$1\""; }
expect_none_left() { # TAG WHAT
  local left; left="$(tagged "$1")"
  [ -z "$left" ] || fail "$2 left processes: $(names_of $left)"
}
state_value() { sed -n "s/^export .*\\b$1=\\([^ ]*\\).*/\\1/p" "$LOCAL_STACK_DIR/stack.env" | tail -1; }

# 1. The venv is missing: nothing may start.
VENV="$work/no-venv" stack up
expect_rc 2 "up without a venv"
expect_err "moto_server not found in $work/no-venv (VENV)" "up without a venv"
expect_err "scripts/install-deps.sh" "up without a venv"
[ ! -s "$work/out" ] || fail "up without a venv printed export lines"
[ ! -e "$LOCAL_STACK_DIR/stack.env" ] || fail "up without a venv left $LOCAL_STACK_DIR/stack.env"
expect_none_left "$tag" "up without a venv"
ok "a missing venv: exit 2, named, nothing started"

# 2. moto fails after PostgreSQL started (a venv whose moto_server exits at once).
mkdir -p "$work/bad-venv/bin"
printf '#!/bin/sh\necho "moto_server: refusing to start (test)" >&2\nexit 3\n' >"$work/bad-venv/bin/moto_server"
chmod +x "$work/bad-venv/bin/moto_server"
VENV="$work/bad-venv" stack up
expect_rc 1 "up with a failing moto"
expect_err "moto_server exited" "up with a failing moto"
expect_err "up failed while starting moto S3" "up with a failing moto"
expect_err "stopped what it had started: PostgreSQL" "up with a failing moto"
[ ! -e "$LOCAL_STACK_DIR" ] || fail "up with a failing moto left $LOCAL_STACK_DIR"
expect_none_left "$tag" "up with a failing moto"
ok "a part failing midway: exit 1, the step named, PostgreSQL stopped, nothing left"

# 3. The whole stack.
stack up
expect_rc 0 "up"
first="$tag"
grep -q '^export AWS_ENDPOINT_URL_REDSHIFT_DATA=' "$work/out" || fail "up printed no AWS_ENDPOINT_URL_REDSHIFT_DATA"
started="$(names_of $(tagged "$first"))"
for part in postgres moto_server redshift-data-local; do
  grep -q "$part" <<<"$started" || fail "up started no $part process that carries its tag: $started"
done
stack status
expect_rc 0 "status of a whole stack"
ok "up: every part started and answering"

# 4. Reused when whole: the same export lines, nothing started.
before="$(cat "$LOCAL_STACK_DIR/stack.env")"
stack up
expect_rc 0 "up on a whole stack"
expect_err "reusing the running stack" "up on a whole stack"
[ "$(cat "$work/out")" = "$before" ] || fail "up on a whole stack printed other settings than the running stack's"
expect_none_left "$tag" "up on a whole stack"
ok "a whole stack is reused"

# 5. A half-dead stack: kill one part (by the PID the stack recorded), then up.
previous="$first"
for part in redshift-data-local "moto S3"; do
  case "$part" in
    redshift-data-local) pid="$(state_value LOCAL_STACK_EMULATOR_PID)" ;;
    *) pid="$(state_value LOCAL_S3_PID)" ;;
  esac
  [ -n "$pid" ] || fail "no PID of $part in stack.env"
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  stack status
  expect_rc 1 "status with $part killed"
  expect_err "$part does not answer" "status with $part killed"
  stack up
  expect_rc 0 "up with $part killed"
  expect_err "not whole ($part does not answer)" "up with $part killed"
  expect_err "starting a new one" "up with $part killed"
  expect_none_left "$previous" "the stack whose $part was killed"
  previous="$tag"
  stack status
  expect_rc 0 "status after up replaced the stack whose $part was killed"
  ok "$part killed: named, the rest stopped, a whole new stack started"
done

# 5b. A whole stack made for another config is not reused: its tables are that config's.
CDC_CONFIG=config/replay-relaxed.toml stack up
expect_rc 0 "up with another CDC_CONFIG"
expect_err "made for another CDC_CONFIG" "up with another CDC_CONFIG"
expect_err "starting a new one" "up with another CDC_CONFIG"
expect_none_left "$previous" "the stack made for another config"
previous="$tag"
grep -q "replay-relaxed.toml" "$LOCAL_STACK_DIR/stack.env" || fail "the new stack does not record the new config"
ok "a stack made for another config: replaced"

# 6. down, down again, bad usage.
stack down
expect_rc 0 "down"
expect_err "stopped: redshift-data-local, moto S3, PostgreSQL" "down"
[ ! -e "$LOCAL_STACK_DIR" ] || fail "down left $LOCAL_STACK_DIR"
expect_none_left "$previous" "down"
stack down
expect_rc 0 "down without a stack"
expect_err "nothing to stop" "down without a stack"
stack sideways
expect_rc 2 "an unknown command"
expect_err "usage: local-stack.sh up | status | down" "an unknown command"
ok "down stops everything; bad usage exits 2"
echo "test-local-stack: all $checks checks passed"
