#!/usr/bin/env bash
# Builds Tickwire's fuzz targets (fuzz/, libFuzzer) on the stable toolchain and runs them.
#
#   scripts/fuzz.sh [--seconds N] [--runs N] [--build-only] [target...]
#
# With no target, every target in fuzz/fuzz_targets/ runs, one after the other, each for N
# seconds (default 60) or N executions (--runs; the first limit reached ends it). Each starts
# from its pinned corpus (fuzz/corpus/<target>/, read only) and a work corpus
# (fuzz/corpus-work/<target>/, gitignored) where it saves what it finds. Per target it prints the
# executions libFuzzer reports. A crash stops the script with a non-zero status and the input
# saved under fuzz/artifacts/<target>/ (gitignored): pin it in fuzz/corpus/<target>/ once fixed.
#
# Stable rustc has no -Zsanitizer, so there is no AddressSanitizer: the targets are safe Rust,
# and what they look for is panics (debug assertions and overflow checks are on in this build).
# The coverage instrumentation is LLVM's SanitizerCoverage, enabled with codegen flags that
# stable accepts; libfuzzer-sys builds libFuzzer itself with the C++ compiler.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../fuzz"

seconds=60
runs=-1
build_only=0
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,16p' "$self" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

if ! command -v "${CXX:-c++}" >/dev/null && ! command -v g++ >/dev/null; then
  echo "fuzz.sh: libfuzzer-sys builds libFuzzer with a C++ compiler; none found (apt-get install g++)" >&2
  exit 1
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps these flags off build scripts and proc macros (they run on the host, not
# under libFuzzer); the instrumented build lives in fuzz/target/<host>/ apart from any other.
export RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing"
bin_args=()
for t in "${targets[@]}"; do bin_args+=(--bin "$t"); done
echo "== building fuzz targets: ${targets[*]}"
cargo build --release --locked --target "$host" "${bin_args[@]}"
((build_only)) && exit 0

bin_dir="${CARGO_TARGET_DIR:-target}/$host/release"
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus-work/$t" "artifacts/$t"
  log="artifacts/$t/last-run.log"
  echo "== fuzzing $t (${seconds}s, runs ${runs})"
  set +e
  "$bin_dir/$t" -max_total_time="$seconds" -runs="$runs" -print_final_stats=1 \
    -artifact_prefix="artifacts/$t/" "corpus-work/$t" "corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  echo "$t: ${execs:-?} executions (exit $rc)"
  if ((rc != 0)); then
    echo "!! $t failed; the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
    status=1
    break
  fi
done
exit "$status"
