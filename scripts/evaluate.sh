#!/usr/bin/env bash
# Builds ebb-sim and regenerates the evaluation quoted in docs/evaluation.md: for the synthetic
# suite, the Google 2011 traces and the same traces with bursts, OUT/<set>/results.csv,
# summary.md and the SVG plots.
#
# Usage: scripts/evaluate.sh [more ebb-sim flags, e.g. --policies ebb,vpa,escra,oracle]
# Environment: BUILD_DIR (default: build), OUT (default: sim/results), JOBS (default: 2),
#              GCD_DIR (default: ../shared/traces/google-2011-gcd next to the repository).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"  # relative paths below, so that the reports quote commands anyone can rerun
build=${BUILD_DIR:-build}
out=${OUT:-sim/results}
gcd=${GCD_DIR:-../shared/traces/google-2011-gcd}

cmake -S . -B "$build" >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target ebb-sim
sim=$(realpath "$build/bin/ebb-sim")

"$sim" --format synthetic --seed 1 --plot 0 --report "$out/synthetic" "$@"
"$sim" --format gcd --trace-dir "$gcd" --plot 0,800 --report "$out/gcd" "$@"
"$sim" --format gcd --trace-dir "$gcd" --burst-amplitude 1 --seed 1 --plot 0,800 --report "$out/gcd-bursty" "$@"
