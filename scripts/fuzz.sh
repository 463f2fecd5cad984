#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan, separate build dir) and
# fuzzes each for a bounded time, starting from its seed corpus in tests/fuzz/corpus/<target>.
# Prints PASS/FAIL per target and ends with "N passed, N failed". A crash leaves its input in
# <build>/crashes/<target>/: add it to the corpus once fixed so every build replays it.
#   scripts/fuzz.sh [--seconds N] [--build-dir DIR] [target...]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=build-fuzz
seconds=15
targets=()
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift ;;
    --build-dir) build=$2; shift ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(find tests/fuzz/corpus -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
fi

# The libraries get coverage instrumentation (fuzzer-no-link) through EBB_SANITIZE; only the
# fuzz targets link libFuzzer's main (tests/fuzz/CMakeLists.txt). The warning options are
# written for GCC: clang must not fail on the ones it does not know.
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEBB_FUZZ=ON \
  -DEBB_SANITIZE=address,undefined,fuzzer-no-link -DCMAKE_CXX_FLAGS=-Wno-unknown-warning-option >/dev/null || { echo "FAIL: fuzz: configure"; echo "0 passed, 1 failed"; exit 1; }
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}" || { echo "FAIL: fuzz: build"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus; the checked-in seeds are only read.
  work="$build/corpus/$t"
  crashes="$build/crashes/$t"
  mkdir -p "$work" "$crashes"
  log="$build/fuzz-$t.log"
  "$build/bin/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  status=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  if ((status == 0)); then
    echo "PASS: fuzz $t: ${runs:-?} runs in ${seconds}s, $cov, no crash"
    passed=$((passed + 1))
  else
    echo "FAIL: fuzz $t (exit $status), input in $crashes/; log $log:"
    grep -A25 -E '==ERROR|runtime error|deadly signal' "$log" | head -40
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
((failed == 0))
