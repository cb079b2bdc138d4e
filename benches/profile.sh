#!/usr/bin/env bash
# Profile the server under a bots load run and draw a flamegraph of where its CPU goes.
#
#   benches/profile.sh [--bots N] [--behavior idle|wander|fight] [--seconds S]
#                      [--transport ws|webtransport] [--rooms-of N] [--port P] [--out FILE.svg]
#
# Builds the server with frame pointers (`--profile profiling`, in target/fp so the usual
# builds are not invalidated) and the bots in release, starts the server, ramps the bots up,
# waits until all are in, then samples the server's threads with `perf record -e cpu-clock -g`
# for S seconds (hardware counters are not available on the project's VM) while the bots play.
# Writes the SVG (default target/profile/<bots>-<behavior>-<transport>.svg), keeps perf.data and
# the folded stacks next to it, and prints the top functions by self time and the split
# between tokio workers and room (simulation) threads. Needs perf (apt-get install -y
# linux-perf) and inferno (installed with cargo on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

bots=32 behavior=fight seconds=20 transport=ws capacity=32 port=18490 out=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bots) bots="$2"; shift 2 ;;
    --behavior) behavior="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    --rooms-of) capacity="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "profile.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in "$bots" "$seconds" "$capacity" "$port"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "profile.sh: '$n' is not a whole number" >&2; exit 2; }
done
case "$transport" in
  ws) quic=(--quic-bind off) ;;
  webtransport) quic=(--quic-bind "127.0.0.1:$port") ;;
  *) echo "profile.sh: --transport is ws or webtransport, not '$transport'" >&2; exit 2 ;;
esac
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install -y linux-perf)" >&2; exit 2; }
if ! command -v inferno-flamegraph >/dev/null; then
  echo "== installing inferno (once)" >&2
  cargo install inferno --version '^0.12' >&2
fi

dir=target/profile
mkdir -p "$dir"
name="$bots-$behavior-$transport"
out="${out:-$dir/$name.svg}"
echo "== building (server with frame pointers, bots in release)" >&2
CARGO_TARGET_DIR=target/fp RUSTFLAGS="-C force-frame-pointers=yes" \
  cargo build --profile profiling --locked -p tickwire-server >&2
cargo build --release --locked -p tickwire-server >&2
server_bin=target/fp/profiling/tickwire
bots_bin="${CARGO_TARGET_DIR:-target}/release/tickwire"

"$server_bin" serve --bind "127.0.0.1:$port" --room-capacity "$capacity" \
  --max-connections-per-ip "$((bots + 256))" "${quic[@]}" >"$dir/server-$name.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || { echo "profile.sh: the server exited:" >&2; cat "$dir/server-$name.log" >&2; exit 1; }
  (( SECONDS < deadline )) || { echo "profile.sh: the server did not answer within 30 s" >&2; exit 1; }
  sleep 0.1
done

# The bots play for the ramp, the recording and a margin on both sides.
ramp=200
play=$((seconds + bots / ramp + 10))
"$bots_bin" bots --url "ws://127.0.0.1:$port/ws" --count "$bots" --duration "$play" --seed 1 \
  --behavior "$behavior" --ramp-up "$ramp" --transport "$transport" \
  --report "$dir/report-$name.json" >"$dir/bots-$name.txt" 2>&1 &
bots_pid=$!
deadline=$((SECONDS + 60 + bots / ramp))
until [[ "$(curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null | awk '/^tickwire_players / {print $2}')" == "$bots" ]]; do
  kill -0 "$bots_pid" 2>/dev/null || { echo "profile.sh: the bots exited:" >&2; cat "$dir/bots-$name.txt" >&2; exit 1; }
  (( SECONDS < deadline )) || { echo "profile.sh: not all $bots bots joined in time" >&2; exit 1; }
  sleep 0.2
done

echo "== recording $seconds s of the server ($bots × $behavior over $transport)" >&2
perf record -e cpu-clock -F 499 -g -p "$server" -o "$dir/perf-$name.data" -- sleep "$seconds" 2>"$dir/perf-record.txt"
wait "$bots_pid" || true

perf script -i "$dir/perf-$name.data" 2>/dev/null | inferno-collapse-perf >"$dir/$name.folded"
inferno-flamegraph --title "tickwire serve: $bots × $behavior over $transport, $seconds s (cpu-clock)" \
  <"$dir/$name.folded" >"$out"

total=$(awk '{n += $NF} END {print n}' "$dir/$name.folded")
echo "flamegraph: $out ($total samples)"
echo "by thread (the first frame of each stack is the thread's name):"
awk -v t="$total" '{ split($1, f, ";"); k = f[1]; sub(/-[0-9]+$/, "", k); n[k] += $NF }
  END { for (k in n) printf "  %-28s %5.1f %%\n", k, 100 * n[k] / t }' "$dir/$name.folded" | sort -k2 -nr | head -8
echo "top functions by self time:"
perf report -i "$dir/perf-$name.data" --no-children --sort symbol --stdio 2>/dev/null \
  | awk '/^ +[0-9.]+%/ {$NF = ""; $(NF-1) = ""; print "  " $0}' | head -15
