#!/usr/bin/env bash
# Prove the cargo-lambda path once (part of `make test`): the local stack up, `cargo lambda
# watch` serving both functions with its env file, `cargo lambda invoke` of the ingest function
# on a sample event and of the replay function, the rows checked — and everything stopped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${VENV:-$root/.venv}"
export PATH="$venv/bin:$PATH"   # cargo-lambda (and the zig it finds through python3) live there
state="$(mktemp -d -t cargo-lambda-check.XXXXXX)"
export LOCAL_STACK_DIR="$state/stack"
watch_pid=""
cleanup() {
  # watch runs in its own process group: cargo, cargo-lambda and the function processes.
  [ -n "$watch_pid" ] && kill -- "-$watch_pid" 2>/dev/null || true
  scripts/local-stack.sh down >/dev/null 2>&1 || true
  rm -rf "$state"
}
trap cleanup EXIT
command -v cargo-lambda >/dev/null || { echo "check-cargo-lambda: cargo-lambda not in $venv; run scripts/install-deps.sh" >&2; exit 1; }
# Captured first: `eval "$(…)"` would hide a failed `up` (eval of nothing succeeds).
stack_env="$(scripts/local-stack.sh up)"
eval "$stack_env"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
setsid cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$LOCAL_STACK_DIR/lambda.env" >"$state/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  kill -0 "$watch_pid" 2>/dev/null || { cat "$state/watch.log" >&2; exit 1; }
  sleep 0.2
done
# The first invoke compiles the function (debug): allow for it.
if ! response="$(timeout 600 cargo lambda invoke ingest --data-file events/01-patientinfo-snapshot.json -A 127.0.0.1 -P "$port")"; then
  cat "$state/watch.log" >&2
  exit 1
fi
echo "check-cargo-lambda: ingest answered: $response"
rows="$(psql -Atc "SELECT count(*) FROM public.patientinfo WHERE NOT _cdc_deleted" "$DATABASE_URL")"
[ "$rows" = 3 ] || { echo "check-cargo-lambda: expected 3 rows after the snapshot, found $rows" >&2; cat "$state/watch.log" >&2; exit 1; }
response="$(timeout 600 cargo lambda invoke replay --data-ascii '{"dry_run": true}' -A 127.0.0.1 -P "$port")"
echo "check-cargo-lambda: replay answered: $response"
case "$response" in *'"dry_run":true'*) ;; *) echo "check-cargo-lambda: unexpected replay response" >&2; exit 1 ;; esac
echo "check-cargo-lambda: ok"
