#!/usr/bin/env bash
# Builds the browser client into client-web/dist/ (git-ignored): the wasm module, its
# wasm-bindgen JS glue and the static files of client-web/www/.
#
# Installs what is missing first (the wasm32 target, wasm-bindgen-cli at the exact version of
# the wasm-bindgen crate in Cargo.lock, wasm-opt from the npm package binaryen) and skips the
# build when dist/ is newer than every input. Safe to run again and again.
#
#   client-web/build.sh            # build when stale
#   client-web/build.sh --force    # build anyway
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dist="$root/client-web/dist"
wasm_name=tickwire_client_web
target_dir="${CARGO_TARGET_DIR:-$root/target}"

log() { printf '[client-web] %s\n' "$*"; }

force=false
[[ "${1:-}" == "--force" ]] && force=true

# wasm-opt from npm (binaryen); pinned so builds are repeatable.
BINARYEN_VERSION=132.0.0

# --- tools --------------------------------------------------------------------------------
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding rustup target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the crate exactly, or it refuses the module.
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [[ -z "$bindgen_version" ]]; then
  echo "wasm-bindgen is not in Cargo.lock" >&2
  exit 1
fi
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $bindgen_version" ]]; then
  log "installing wasm-bindgen-cli $bindgen_version (a few minutes)"
  # Not --locked: the CLI's own lock file pins crates this toolchain cannot build.
  cargo install wasm-bindgen-cli --version "$bindgen_version"
fi

wasm_opt="$root/client-web/node_modules/.bin/wasm-opt"
if [[ ! -x "$wasm_opt" ]]; then
  if command -v npm >/dev/null; then
    log "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) under client-web/node_modules"
    (cd client-web && npm install --no-save --no-audit --no-fund --loglevel=error \
      "binaryen@$BINARYEN_VERSION") || log "wasm-opt unavailable; the module is not optimised further"
  else
    log "npm not found; the module is not optimised further by wasm-opt"
  fi
fi

# --- stale check --------------------------------------------------------------------------
stamp="$dist/.built"
if ! $force && [[ -f "$stamp" ]]; then
  newer=$(find client-web/src client-web/www client-web/Cargo.toml client-web/build.sh \
    shared/src shared/Cargo.toml Cargo.lock Cargo.toml -newer "$stamp" -print -quit)
  if [[ -z "$newer" ]]; then
    log "dist is up to date ($dist)"
    exit 0
  fi
fi

# --- build --------------------------------------------------------------------------------
log "cargo build (wasm32, profile wasm-release)"
cargo build -p tickwire-client-web --target wasm32-unknown-unknown --profile wasm-release --locked
raw="$target_dir/wasm32-unknown-unknown/wasm-release/$wasm_name.wasm"

rm -rf "$dist"
mkdir -p "$dist"
wasm-bindgen --target web --no-typescript --out-dir "$dist" "$raw"
out="$dist/${wasm_name}_bg.wasm"

if [[ -x "$wasm_opt" ]]; then
  before=$(stat -c %s "$out")
  if "$wasm_opt" -Oz --converge --strip-producers --enable-bulk-memory --enable-nontrapping-float-to-int \
      --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$out" -o "$out.opt"; then
    after=$(stat -c %s "$out.opt")
    if (( after < before )); then
      mv "$out.opt" "$out"
      log "wasm-opt -Oz: $before -> $after bytes"
    else
      rm -f "$out.opt"
      log "wasm-opt -Oz did not shrink the module; kept the original"
    fi
  else
    rm -f "$out.opt"
    log "wasm-opt failed; kept the unoptimised module"
  fi
fi

cp -R client-web/www/. "$dist/"
touch "$stamp"

size=$(stat -c %s "$out")
gz=$(gzip -9 -c "$out" | wc -c)
log "wasm: $size bytes ($(( size / 1024 )) KiB), gzipped $gz bytes ($(( gz / 1024 )) KiB); targets: <= 1 MB, <= 350 KB gzipped"
log "built $dist"
