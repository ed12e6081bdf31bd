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
