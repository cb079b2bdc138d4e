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

log "ok"
