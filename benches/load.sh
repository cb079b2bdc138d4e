#!/usr/bin/env bash
# Load benchmark: a release `tickwire serve` and `tickwire bots` on this machine, one table out.
#
#   benches/load.sh [--bots N] [--duration SECS] [--tick-rate HZ] [--snapshot-rate HZ]
#                   [--behavior idle|wander|fight] [--ramp-up PER_SEC] [--npcs N] [--port P]
#                   [--room-capacity N] [--transport ws|webtransport] [--hold]
#                   [--max-rooms N] [--markdown]
#
# --transport webtransport serves QUIC on the same port number over UDP (a dev certificate)
# and runs the bots over WebTransport (one client QUIC socket for all of them). --hold runs
# idle sessions (join, then only heartbeats) instead of playing bots: the memory-per-session run.
# Prints: bots, rooms, server tick p50/p99/max, overruns, server CPU % (of one core, over the
# bots' run), server RSS (before the bots and at its peak, and growth per bot), bytes per client
# per second, snapshot delivery, RTT p99, input → snapshot p50/p99. The bots' JSON report and the
# server's log stay in target/load/. Quantiles from /metrics are histogram bucket upper bounds.
set -euo pipefail
cd "$(dirname "$0")/.."

bots=32 duration=20 tick_rate=60 snapshot_rate=30 behavior=wander ramp=200 npcs=4 port=18480
capacity=32
markdown=0
transport=ws
hold=()
max_rooms=256
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bots) bots="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --tick-rate) tick_rate="$2"; shift 2 ;;
    --snapshot-rate) snapshot_rate="$2"; shift 2 ;;
    --behavior) behavior="$2"; shift 2 ;;
    --ramp-up) ramp="$2"; shift 2 ;;
    --npcs) npcs="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --room-capacity) capacity="$2"; shift 2 ;;
    --transport) transport="$2"; shift 2 ;;
    --hold) hold=(--hold); shift ;;
    --max-rooms) max_rooms="$2"; shift 2 ;;
    --markdown) markdown=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "load.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in "$bots" "$duration" "$tick_rate" "$snapshot_rate" "$ramp" "$npcs" "$port" "$capacity" "$max_rooms"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "load.sh: '$n' is not a whole number" >&2; exit 2; }
done
case "$transport" in
  ws) quic=(--quic-bind off) ;;
  webtransport) quic=(--quic-bind "127.0.0.1:$port") ;;
  *) echo "load.sh: --transport is ws or webtransport, not '$transport'" >&2; exit 2 ;;
esac
command -v jq >/dev/null || { echo "load.sh: needs jq (apt-get install -y jq)" >&2; exit 2; }

# Each bot and each session is a file descriptor; bots and server are separate processes.
# A WebSocket bot is a socket on each side; WebTransport bots share one UDP socket (and the
# server has one).
want_fds=256
[[ "$transport" == ws ]] && want_fds=$((bots + 256))
if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt "$want_fds" ]]; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt "$want_fds" ]]; then
    echo "load.sh: $bots bots need $want_fds file descriptors; the hard limit is $(ulimit -Hn)" >&2
    exit 2
  fi
fi

echo "== building the release binary" >&2
cargo build --release --locked -p tickwire-server >&2
bin="${CARGO_TARGET_DIR:-target}/release/tickwire"
out=target/load
mkdir -p "$out"
report="$out/report-$bots-$behavior-$transport.json"
log="$out/server-$bots-$behavior-$transport.log"

"$bin" serve --bind "127.0.0.1:$port" --tick-rate "$tick_rate" --snapshot-rate "$snapshot_rate" \
  --npcs "$npcs" --room-capacity "$capacity" --max-connections-per-ip "$((bots + 256))" --max-rooms "$max_rooms" "${quic[@]}" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

# Wait for the server to answer, with a deadline.
deadline=$((SECONDS + 30))
until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || { echo "load.sh: the server exited; its log:" >&2; cat "$log" >&2; exit 1; }
  (( SECONDS < deadline )) || { echo "load.sh: the server did not answer within 30 s" >&2; exit 1; }
  sleep 0.1
done

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
lo_bytes() { awk '$1 == "lo:" {print $2}' /proc/net/dev; }
rss_before=$(rss_kib)
cpu_before=$(cpu_ticks)
lo_before=$(lo_bytes)
t_before=$(date +%s.%N)

# Sample the server's RSS and open rooms while the bots run; keep the largest.
peak_file="$out/rss-peak-$port" rooms_file="$out/rooms-peak-$port" sessions_file="$out/sessions-peak-$port"
echo "$rss_before" >"$peak_file"
echo 0 >"$rooms_file"
echo "0 $rss_before $rss_before" >"$sessions_file"
(
  # A sample that fails (the server busy, a scrape refused) is skipped, never the sampler.
  set +e
  peak=$rss_before rooms=0 sessions=0 first=$rss_before
  while kill -0 "$server" 2>/dev/null; do
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$server/status" 2>/dev/null)
    r=${r:-0}
    if (( r > peak )); then peak=$r; echo "$peak" >"$peak_file"; fi
    m=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" 2>/dev/null)
    n=$(awk '/^tickwire_rooms / {print $2}' <<<"$m")
    if (( ${n:-0} > rooms )); then rooms=$n; echo "$rooms" >"$rooms_file"; fi
    # The most sessions at once, the RSS when they were first all in, and the RSS the last
    # time they still were (what holding them costs once every room has settled).
    c=$(awk '/^tickwire_connections / {print $2}' <<<"$m")
    if (( ${c:-0} > sessions )); then sessions=$c; first=$r; fi
    if (( ${c:-0} > 0 && ${c:-0} == sessions )); then echo "$sessions $first $r" >"$sessions_file"; fi
    sleep 0.5
  done
) &
sampler=$!
trap 'kill "$sampler" 2>/dev/null || true; kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

echo "== $bots × $behavior bots for $duration s (tick $tick_rate Hz, snapshots $snapshot_rate Hz)" >&2
set +e
"$bin" bots --url "ws://127.0.0.1:$port/ws" --count "$bots" --duration "$duration" --seed 1 \
  --behavior "$behavior" --ramp-up "$ramp" --transport "$transport" "${hold[@]}" --report "$report" >"$out/bots-summary.txt" 2>"$out/bots-stderr.txt"
bots_rc=$?
set -e
cpu_after=$(cpu_ticks)
lo_after=$(lo_bytes)
t_after=$(date +%s.%N)
rss_end=$(rss_kib)
rss_peak=$(cat "$peak_file")
final_metrics=$(curl -fsS --max-time 30 "http://127.0.0.1:$port/metrics" || true)
max_tick=$(awk '/^tickwire_tick_duration_max_seconds / {print $2}' <<<"$final_metrics")
# Why the server ended sessions, the reasons it counted (the bots' own closes included).
ended=$(awk '/^tickwire_disconnects_total\{/ && $2 > 0 { r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r); printf "%s%s %d", sep, r, $2; sep = ", " }' <<<"$final_metrics")
kill "$sampler" 2>/dev/null || true

[[ -s "$report" ]] || { echo "load.sh: the bots wrote no report (exit $bots_rc):" >&2; cat "$out/bots-stderr.txt" >&2; exit 1; }
cpu_pct=$(awk -v a="$cpu_before" -v b="$cpu_after" -v t0="$t_before" -v t1="$t_after" -v hz="$clk" \
  'BEGIN { printf "%.1f", 100 * (b - a) / hz / (t1 - t0) }')
per_bot_kib=$(awk -v a="$rss_before" -v b="$rss_peak" -v n="$bots" 'BEGIN { printf "%.1f", (b - a) / n }')

ms() { jq -r "if $1 == null then \"n/a\" else ($1 * 1000 * 100 | round / 100 | tostring) end" "$report"; }
row() { if (( markdown )); then printf '| %s | %s |\n' "$1" "$2"; else printf '  %-34s %s\n' "$1" "$2"; fi; }
connected=$(jq -r '.bots.connected' "$report")
failed=$(jq -r '.bots.failed' "$report")
(( markdown )) && printf '| load run | value |\n|---|---|\n'
(( markdown )) || echo "tickwire load: $bots × $behavior over $transport, $duration s, tick $tick_rate Hz, snapshots $snapshot_rate Hz, rooms of $capacity + $npcs NPCs"
row "bots connected / failed" "$connected / $failed"
row "rooms (most open at once)" "$(cat "$rooms_file")"
row "tick p50 / p99 / max (ms)" "≤ $(ms .server.tick_p50_seconds) / ≤ $(ms .server.tick_p99_seconds) / $(awk -v m="$max_tick" 'BEGIN { printf "%.2f", m * 1000 }')"
row "tick overruns" "$(jq -r '.server.overruns' "$report")"
row "server CPU (% of one core)" "$cpu_pct"
row "server RSS before / peak (MiB)" "$(awk -v a="$rss_before" -v b="$rss_peak" 'BEGIN { printf "%.1f / %.1f", a / 1024, b / 1024 }')"
row "RSS growth per bot (KiB)" "$per_bot_kib"
read -r most_sessions rss_then rss_held <"$sessions_file"
row "sessions (most at once) / RSS then" "$most_sessions / $(awk -v r="$rss_then" 'BEGIN { printf "%.1f MiB", r / 1024 }')"
per_session() { awk -v a="$rss_before" -v b="$1" -v n="$most_sessions" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "n/a" }'; }
row "RSS per session at the most (KiB)" "$(per_session "$rss_then") when all in, $(per_session "$rss_held") the last time all were held"
row "bytes in per client per s" "$(jq -r '.bytes_received_per_bot_per_sec.mean | round' "$report")"
# Every packet between the server and the bots crosses the loopback once: its byte counter is
# the wire cost both ways, IP/TCP/UDP headers and TLS/QUIC included.
row "wire bytes per client per s (both ways)" "$(awk -v a="$lo_before" -v b="$lo_after" -v n="$connected" -v t0="$t_before" -v t1="$t_after" 'BEGIN { printf "%.0f", (b - a) / n / (t1 - t0) }')"
row "snapshot delivery (mean / min)" "$(jq -r '"\(.snapshots.fraction_of_expected.mean * 1000 | round / 10) % / \(.snapshots.fraction_of_expected.min * 1000 | round / 10) %"' "$report")"
row "RTT p99 (ms)" "$(jq -r '.rtt_ms.p99 * 100 | round / 100' "$report")"
row "input → snapshot p50 / p99 (ms)" "≤ $(ms .server.input_to_snapshot_p50_seconds) / ≤ $(ms .server.input_to_snapshot_p99_seconds)"
row "decode errors" "$(jq -r '.decode_errors' "$report")"
row "sessions ended, by the server's reason" "${ended:-none}"
echo "report: $report, server log: $log" >&2
exit "$bots_rc"
