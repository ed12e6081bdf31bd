#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60) and print a summary.
#
#   fuzz/run.sh [SECONDS] [TARGET...]       # default: all targets, 60 s each
#
# Environment:
#   FUZZ_CARGO       how to call cargo (default: `cargo`, the stable toolchain with
#                    RUSTC_BOOTSTRAP=1 so that cargo-fuzz may pass -Zsanitizer=address;
#                    e.g. FUZZ_CARGO="cargo +nightly" to use a nightly toolchain)
#   FUZZ_SANITIZER   address (default) or none
#   CORPUS_CAP       files kept per corpus after minimization (default 200)
#
# The SQL target gets a throwaway PostgreSQL 15 from scripts/local-pg.sh, removed on exit.
# Crashes are left in fuzz/artifacts/<target>/; the script exits 1 if any target failed.
set -uo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$FUZZ_DIR")"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(msk_event debezium_decode sql_literal avro_frame)
CAP="${CORPUS_CAP:-200}"
read -r -a CARGO <<<"${FUZZ_CARGO:-cargo}"
SANITIZER="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

case "$SECONDS_PER_TARGET" in
  '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

cd "$FUZZ_DIR"

if ! "${CARGO[@]}" fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "cargo install cargo-fuzz failed" >&2; exit 1; }
fi

options_for() {
  case "$1" in
    msk_event) echo "-dict=dicts/json.dict -max_len=32768" ;;
    debezium_decode) echo "-dict=dicts/json.dict -max_len=16384" ;;
    sql_literal) echo "-dict=dicts/sql.dict -max_len=4096" ;;
    *) echo "" ;;
  esac
}

PG_DIR=""
cleanup() {
  if [ -n "$PG_DIR" ]; then "$ROOT/scripts/local-pg.sh" stop "$PG_DIR"; fi
}
trap cleanup EXIT
start_pg() {
  [ -n "$PG_DIR" ] && return 0
  local exports
  exports="$("$ROOT/scripts/local-pg.sh" start --until-pid $$)" || return 1
  eval "$exports"
  PG_DIR="$LOCAL_PG_DIR"
  echo "== PostgreSQL at $DATABASE_URL"
}

echo "== building (sanitizer: $SANITIZER, cargo: ${CARGO[*]})"
"${CARGO[@]}" fuzz build --sanitizer "$SANITIZER" || { echo "cargo fuzz build failed" >&2; exit 1; }
echo "== seed corpora from events/"
python3 "$FUZZ_DIR/seeds.py" "$FUZZ_DIR/seeds" >/dev/null

LOG_DIR="$FUZZ_DIR/target/logs"
mkdir -p "$LOG_DIR"
declare -A RESULT
failed=0
for target in "${TARGETS[@]}"; do
  [ "$target" = sql_literal ] && { start_pg || { RESULT[$target]="FAILED: no PostgreSQL"; failed=1; continue; }; }
  corpus="corpus/$target"
  mkdir -p "$corpus" "seeds/$target" "artifacts/$target"
  # Known reproducers first: they must not crash (fixed bugs stay fixed).
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
    if ! "${CARGO[@]}" fuzz run --sanitizer "$SANITIZER" "$target" "regressions/$target"/* >"$LOG_DIR/$target.regressions.log" 2>&1; then
      echo "== $target: a regression input crashes (see $LOG_DIR/$target.regressions.log)"
      RESULT[$target]="FAILED: regression input crashes"
      failed=1
      continue
    fi
  fi
  echo "== $target: ${SECONDS_PER_TARGET}s"
  log="$LOG_DIR/$target.log"
  # shellcheck disable=SC2046
  "${CARGO[@]}" fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" "seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    $(options_for "$target") >"$log" 2>&1
  status=$?
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  [ -n "$done_line" ] || done_line="$(grep -E '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE)' "$log" | tail -1)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")"
  if [ "$status" -ne 0 ]; then
    failed=1
    crash="$(ls -t "artifacts/$target" 2>/dev/null | head -1)"
    RESULT[$target]="FAILED (exit $status): artifacts/$target/$crash, log $log"
    grep -m1 -A2 -E 'panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer' "$log" | sed 's/^/    /'
    continue
  fi
  # Keep the corpus small enough to commit: minimize, then cap.
  "${CARGO[@]}" fuzz cmin --sanitizer "$SANITIZER" "$target" "$corpus" -- $(options_for "$target") \
    >"$LOG_DIR/$target.cmin.log" 2>&1 || echo "== $target: cmin failed (see $LOG_DIR/$target.cmin.log)"
  count="$(find "$corpus" -type f | wc -l)"
  if [ "$count" -gt "$CAP" ]; then
    find "$corpus" -type f -printf '%s %p\n' | sort -n | tail -n +"$((CAP + 1))" | cut -d' ' -f2- | xargs -r rm -f
  fi
  kept="$(find "$corpus" -type f | wc -l)"
  RESULT[$target]="ok: ${execs:-?} execs, ${rate:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${kept} files (${count} after cmin)"
done

echo
echo "== summary (${SECONDS_PER_TARGET}s per target, sanitizer $SANITIZER)"
for target in "${TARGETS[@]}"; do
  printf '%-16s %s\n' "$target" "${RESULT[$target]:-not run}"
done
exit "$failed"
