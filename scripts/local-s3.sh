#!/usr/bin/env bash
# A local S3-protocol server (moto, from the project venv) on a free loopback port.
#
#   eval "$(scripts/local-s3.sh start)"          # prints export lines: AWS_ENDPOINT_URL_S3, LOCAL_S3_PID
#   scripts/local-s3.sh start --until-pid PID    # also stop the server once process PID exits
#   scripts/local-s3.sh stop PID
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv}"
die() { echo "local-s3: $*" >&2; exit 1; }

start() {
  local until_pid=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --until-pid) until_pid="${2:?--until-pid needs a PID}"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -x "$venv/bin/moto_server" ] || die "moto_server not found in $venv. Install it with scripts/install-deps.sh (or run \`make test\`)."
  local port log pid
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  log="$(mktemp -t local-s3.XXXXXX.log)"
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
  pid=$!
  ready() { python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; }
  for _ in $(seq 1 150); do
    if ready; then break; fi
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "moto_server exited"; }
    sleep 0.1
  done
  ready || { cat "$log" >&2; die "moto_server did not start"; }
  if [ -n "$until_pid" ]; then
    nohup bash -c "while kill -0 $until_pid 2>/dev/null; do sleep 1; done; kill $pid 2>/dev/null; rm -f '$log'" >/dev/null 2>&1 </dev/null &
  fi
  echo "export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port LOCAL_S3_PID=$pid LOCAL_S3_LOG=$log"
}

stop() {
  local pid="${1:?usage: local-s3.sh stop PID}"
  kill "$pid" 2>/dev/null || true
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: local-s3.sh start [--until-pid PID] | stop PID" ;;
esac
