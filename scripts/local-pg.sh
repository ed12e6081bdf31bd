#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on a free loopback port.
#
#   eval "$(scripts/local-pg.sh start)"          # prints export lines: DATABASE_URL, PGHOST, PGPORT, PGUSER,
#                                                #   PGDATABASE, LOCAL_PG_DIR
#   scripts/local-pg.sh start --until-pid PID    # also stop and remove the cluster once process PID exits
#   scripts/local-pg.sh stop DIR                 # stop the cluster in DIR and remove DIR
#
# As root, initdb and pg_ctl run as the `postgres` user (they refuse root).
set -euo pipefail

die() { echo "local-pg: $*" >&2; exit 1; }

find_bindir() {
  if [ -n "${PGBIN:-}" ]; then echo "$PGBIN"; return; fi
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return; fi
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  die "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them with:
    apt-get install -y --no-upgrade postgresql
or run \`make test\`, which installs them. Set PGBIN to use another installation."
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop() {
  local dir="${1:?usage: local-pg.sh stop DIR}"
  [ -d "$dir" ] || return 0
  local bindir; bindir="$(find_bindir)"
  as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

start() {
  local until_pid=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --until-pid) until_pid="${2:?--until-pid needs a PID}"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  local bindir; bindir="$(find_bindir)"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root needs the 'postgres' system user (created by the postgresql package)"
  fi
  local dir; dir="$(mktemp -d -t local-pg.XXXXXX)"
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
  as_pg "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; die "initdb failed"; }
  local port attempt
  for attempt in 1 2 3; do
    port="$(free_port)"
    if as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      break
    fi
    [ "$attempt" = 3 ] && { cat "$dir/server.log" >&2; rm -rf "$dir"; die "pg_ctl start failed"; }
  done
  if [ -n "$until_pid" ]; then
    # A watchdog that removes the cluster when its owner exits.
    nohup bash -c "while kill -0 $until_pid 2>/dev/null; do sleep 1; done; '$0' stop '$dir'" \
      >/dev/null 2>&1 </dev/null &
  fi
  echo "export LOCAL_PG_DIR=$dir PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=postgres"
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: local-pg.sh start [--until-pid PID] | stop DIR" ;;
esac
