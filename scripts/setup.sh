#!/usr/bin/env bash
# Installs what Tickwire's build and tests need, skipping whatever is already there.
# Safe to run again and again; CI runs it on a fresh machine.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

# The wasm32 target: the shared crate is checked for the browser.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# Headless Chromium for the browser end-to-end tests (Debian's package; playwright-core drives
# it and never downloads a browser of its own).
if [[ ! -x /usr/bin/chromium ]]; then
  log "installing chromium (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

# redis-server for the cluster tests (each starts its own on a free port; nothing is saved).
if ! command -v redis-server >/dev/null; then
  log "installing redis-server (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
fi

# A C++ compiler: libfuzzer-sys builds libFuzzer for the fuzz targets (scripts/fuzz.sh).
if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
  log "installing g++ (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
fi

# Node and npm run the end-to-end tests.
if ! command -v npm >/dev/null; then
  log "installing nodejs and npm (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

# The e2e tests' node dependencies (playwright-core, pinned in tests/e2e/package.json).
e2e="$(dirname "$0")/../tests/e2e"
if [[ ! -f "$e2e/node_modules/playwright-core/package.json" ]]; then
  log "installing the e2e tests' node dependencies"
  (cd "$e2e" && npm install --no-audit --no-fund --loglevel=error)
fi

log "ok"
