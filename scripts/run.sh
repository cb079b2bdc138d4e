#!/usr/bin/env bash
# Runs the game: builds the browser client when stale (client-web/build.sh), then the server,
# which serves it at http://127.0.0.1:8080/ by default (4 NPC bots per room).
#
#   scripts/run.sh                          # http://127.0.0.1:8080/
#   scripts/run.sh --bind 0.0.0.0:9000      # any `tickwire serve` flag passes through
set -euo pipefail
cd "$(dirname "$0")/.."
client-web/build.sh
exec cargo run --release -p tickwire-server -- serve "$@"
