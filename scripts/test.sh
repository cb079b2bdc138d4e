#!/usr/bin/env bash
# Runs every Tickwire test: formatting, lints, the wasm32 build of the shared crate, then the
# whole workspace's tests, then the browser end-to-end tests (headless Chromium). Installs what
# is missing first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== rustdoc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked -p tickwire-shared -p tickwire-derive -p tickwire-client-web

echo "== wasm32 build of tickwire-shared"
cargo build -p tickwire-shared --target wasm32-unknown-unknown --locked

echo "== cargo test"
cargo test --workspace --locked

echo "== fuzz smoke (scripts/fuzz.sh: every target 10 s from its pinned corpus, stable toolchain)"
scripts/fuzz.sh --seconds 10

echo "== browser client build (client-web/build.sh)"
client-web/build.sh

echo "== browser end-to-end tests (headless Chromium)"
# The `tickwire` CLI that `cargo test` just built (the tests crate's copy of it, the same
# `tickwire_server::cli::main`): no second build of the server with other features.
TICKWIRE_BIN="${CARGO_TARGET_DIR:-target}/debug/tickwire-test-server" node --test tests/e2e/
