#!/usr/bin/env bash
# Install what `make test`, `make demo` and `make bench` need on a fresh Debian machine.
# Idempotent: a second run changes nothing.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }

if ! need cargo; then
  echo "install-deps: cargo not found. Install Rust with rustup: https://rustup.rs" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "install-deps: adding rustup component $component"
    rustup component add "$component"
  fi
done
if ! need python3; then
  echo "install-deps: installing python3"
  apt-get install -y --no-upgrade python3 python3-venv
fi

# The project's Python venv (boto3 for the Data API conformance test, later moto and the
# SAM tooling). Location: $VENV, default .venv in the repository. Reinstalled only when
# requirements-dev.txt changes.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${VENV:-$root/.venv}"
# pip prints each package it collects and installs (a first install takes minutes); its
# progress bars only on a terminal, so that a CI log stays one line per package.
pip_progress=(--progress-bar on)
[ -t 1 ] || pip_progress=(--progress-bar off)
stamp="$venv/.requirements-sha256"
want="$(sha256sum "$root/requirements-dev.txt" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "install-deps: creating Python venv at $venv"
  python3 -m venv "$venv" || { apt-get install -y --no-upgrade python3-venv && python3 -m venv "$venv"; }
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: installing requirements-dev.txt into $venv (moto, SAM CLI, cfn-lint, cargo-lambda, sqlfluff: a few minutes the first time)"
  "$venv/bin/pip" install "${pip_progress[@]}" --disable-pip-version-check -r "$root/requirements-dev.txt"
  echo "$want" >"$stamp"
fi
# checkov, in a venv of its own: it pins boto3 and other packages exactly, against ours
# (requirements-checkov.txt). Reinstalled only when that file changes.
checkov_venv="$venv/checkov"
checkov_stamp="$checkov_venv/.requirements-sha256"
checkov_want="$(sha256sum "$root/requirements-checkov.txt" | cut -d' ' -f1)"
if [ ! -x "$checkov_venv/bin/python" ]; then
  echo "install-deps: creating the checkov venv at $checkov_venv"
  python3 -m venv "$checkov_venv"
fi
if [ "$(cat "$checkov_stamp" 2>/dev/null)" != "$checkov_want" ]; then
  echo "install-deps: installing requirements-checkov.txt into $checkov_venv"
  "$checkov_venv/bin/pip" install "${pip_progress[@]}" --disable-pip-version-check -r "$root/requirements-checkov.txt"
  echo "$checkov_want" >"$checkov_stamp"
fi

# PostgreSQL 15 server binaries for the throwaway clusters of scripts/local-pg.sh.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! need initdb; then
  echo "install-deps: installing PostgreSQL"
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y --no-upgrade postgresql || { apt-get update && apt-get install -y --no-upgrade postgresql; }
  else
    sudo apt-get install -y --no-upgrade postgresql || { sudo apt-get update && sudo apt-get install -y --no-upgrade postgresql; }
  fi
fi
