#!/usr/bin/env bash
# The main job's scenario (scripts/demo/scenario.sh) on a real kernel, judged: under ebbd no
# workload is OOM-killed, the grower reaches the 300 MB it grows to (its static memory.max is
# 200 MB), the bursty service is throttled for less time than under its static cpu.max, and the
# idle service's CPU slack is smaller than under its static limit.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
in_vm_or_reexec "$0" "$@"

keep=/tmp/ebb-demo
rm -rf "$keep"
EBB_BIN=$bin EBB_DEMO_KEEP=$keep bash "$repo/scripts/demo/scenario.sh" 12 || fail "scenario.sh exited with $?"
log=$keep/demo-ebbd.log
# column COLUMN PHASE WORKLOAD: one figure of a phase's table (columns as scenario.sh keeps them).
column() { awk -F'\t' -v c="$1" -v w="$3" '$1 ~ "/" w "$" { print $c }' "$keep/demo-$2.tsv"; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
below() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

if [[ -f $keep/demo-static.tsv && -f $keep/demo-ebbd.tsv ]]; then
  for w in bursty idle grower; do
    check "under ebbd, $w was not OOM-killed ($(column 9 ebbd "$w") kills; static: $(column 9 static "$w"))" \
      test "$(column 9 ebbd "$w")" = 0
  done
  check "under ebbd, the grower reached its memory (peak $(column 8 ebbd grower) MB; static: $(column 8 static grower) MB)" \
    at_least "$(column 8 ebbd grower)" 280
  check "under ebbd, the grower ran (used $(column 3 ebbd grower) cores)" below 0 "$(column 3 ebbd grower)"
  check "bursty throttled less under ebbd ($(column 5 ebbd bursty) s vs $(column 5 static bursty) s static)" \
    below "$(column 5 ebbd bursty)" "$(column 5 static bursty)"
  check "idle's CPU slack smaller under ebbd ($(column 4 ebbd idle) vs $(column 4 static idle) cores)" \
    below "$(column 4 ebbd idle)" "$(column 4 static idle)"
else
  fail "the scenario kept no tables in $keep"
fi
finish
