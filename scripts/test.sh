#!/usr/bin/env bash
# Runs every Tickwire test: formatting, lints, the wasm32 build of the shared crate, then the
# whole workspace's tests. Installs what is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== wasm32 build of tickwire-shared"
cargo build -p tickwire-shared --target wasm32-unknown-unknown --locked

echo "== cargo test"
cargo test --workspace --locked
