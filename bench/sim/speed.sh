#!/usr/bin/env bash
# Issue 4's speed target as instructions: ebb-sim's callgrind instructions per container-tick
# for 1,000 "mixed" synthetic containers at a 100 ms tick, the difference of a 30 s and a 0.1 s
# run (which cancels start-up and the report), divided by 1,000 x 299 ticks. Fails when a
# policy needs more than its bound. Instruction counts are stable where wall time on a shared
# machine is not (docs/evaluation.md, "Speed").
#   bench/sim/speed.sh EBB_SIM [POLICY=BOUND ...]   (default: oracle=700 ebb-heuristic=1100)
# Exits 77 (skipped) without valgrind.
set -uo pipefail

sim=${1:?usage: speed.sh EBB_SIM [POLICY=BOUND ...]}
shift
bounds=("$@")
((${#bounds[@]})) || bounds=(oracle=700 ebb-heuristic=1100)
command -v valgrind >/dev/null || { echo "SKIP: valgrind is not installed"; exit 77; }

containers=1000
seconds=30
ticks=$((seconds * 10 - 1))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# instructions POLICY DURATION: the instructions callgrind counted for the whole run.
instructions() {
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$sim" --format synthetic --workloads mixed \
    --containers "$containers" --duration "$2" --compression 1 --policies "$1" --report "$tmp/report" --plot 0 \
    >/dev/null 2>"$tmp/log" || { cat "$tmp/log" >&2; return 1; }
  grep -oE 'Collected : [0-9]+' "$tmp/log" | grep -oE '[0-9]+$'
}

failed=0
for entry in "${bounds[@]}"; do
  policy=${entry%%=*}
  bound=${entry#*=}
  long=$(instructions "$policy" "${seconds}s") && short=$(instructions "$policy" 0.1s) || { echo "FAIL: $policy: ebb-sim failed"; failed=1; continue; }
  per=$(((long - short) / (containers * ticks)))
  line="$policy: $per instructions per container-tick (($long - $short) / ($containers x $ticks)), bound $bound"
  if ((per > bound)); then
    echo "FAIL: $line"
    failed=1
  else
    echo "PASS: $line"
  fi
done
exit "$failed"
