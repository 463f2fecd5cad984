#!/usr/bin/env bash
# Issue 3, must-show e: how fast ebbd raises a tight cpu.max when a workload jumps from 10% to
# 100% of a CPU, over 20 jumps, with decisions on ticks only (react_to_events = false) versus
# event-driven (probe and PSI events decide at once). The delay of a jump is from the workload's
# own timestamp of the jump to ebbd's decision-log timestamp of the first cpu.max write at
# >= 0.5 cores after it (both the system clock of the same VM). Prints medians and p95.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

jumps=${EBB_REACTION_JUMPS:-20}
period=3  # 1.5 s quiet (the limit comes back down), 1.5 s busy
work=/tmp/reaction
mkdir -p "$work"
slice_setup

# run_mode NAME REACT: one ebbd run; writes $work/NAME.delays (one delay in ms per jump).
run_mode() {
  local mode=$1 react=$2 cg=jumpy-$1
  new_cgroup "$cg"
  echo "15000 100000" >"$CG/ebb.slice/$cg/cpu.max"
  cat >"$work/$mode.toml" <<TOML
[daemon]
tick = "200ms"
react_to_events = $react
decision_log = "$work/$mode.decisions"
[select]
patterns = ["ebb.slice/$cg"]
TOML
  "$bin/ebbd" --config "$work/$mode.toml" --state-dir "$work/state-$mode" >"$work/$mode.log" 2>&1 &
  local ebbd=$!
  wait_until 60 grep -q "adopted" "$work/$mode.log" || fail "$mode: ebbd adopted the cgroup"
  sleep 2
  run_in "$cg" "$bin/ebb-workload" bursty --low 0.1 --high 1.0 --period "$period" \
    --seconds $((jumps * period + 1)) --log "$work/$mode.jumps"
  local load=$!
  wait "$load"
  kill -TERM "$ebbd"; wait "$ebbd"
  # Decision lines: the first cpu_limit_cores (the decision's, right after "cgroup") and time_ms.
  sed -n 's/^{"applied":[a-z]*,"cgroup":"[^"]*","cpu_limit_cores":\([0-9.e+-]*\),.*"time_ms":\([0-9]*\).*/\2 \1/p' \
    "$work/$mode.decisions" >"$work/$mode.limits"
  awk 'NR == FNR { t[NR] = $1; c[NR] = $2; n = NR; next }
       $1 == "high" { for (i = 1; i <= n; i++) if (t[i] >= $2 && c[i] >= 0.5) { print t[i] - $2; break } }' \
    "$work/$mode.limits" "$work/$mode.jumps" >"$work/$mode.delays"
  rmdir "$CG/ebb.slice/$cg" 2>/dev/null || true
}

# stats FILE: "median p95 count" of the numbers in FILE.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "none none 0"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    p = v[int(0.95 * NR + 0.999)]; if (p == "") p = v[NR]
    print m, p, NR }'
}

run_mode tick false
run_mode event true
read -r tick_median tick_p95 tick_n < <(stats "$work/tick.delays")
read -r event_median event_p95 event_n < <(stats "$work/event.delays")
echo "reaction to a 10% -> 100% jump under a tight cpu.max, $jumps jumps each, 200 ms tick:"
echo "  tick-driven:  median ${tick_median} ms, p95 ${tick_p95} ms (${tick_n} jumps answered)"
echo "  event-driven: median ${event_median} ms, p95 ${event_p95} ms (${event_n} jumps answered)"
echo "  event sources: $(grep -o 'probes active: .*' "$work/event.log" | head -1)"
[[ -n ${EBB_VM_OUT:-} ]] && cp "$work"/*.delays "$work"/*.log "$work"/*.jumps "$work"/*.limits "$EBB_VM_OUT/" 2>/dev/null

check "e: most jumps answered in both modes (${tick_n}, ${event_n} of $jumps)" \
  test "$tick_n" -ge $((jumps * 3 / 4)) -a "$event_n" -ge $((jumps * 3 / 4))
if [[ $tick_n -gt 0 && $event_n -gt 0 ]]; then
  check "e: event-driven median (${event_median} ms) clearly below tick-driven (${tick_median} ms)" \
    awk -v e="$event_median" -v t="$tick_median" 'BEGIN { exit !(e < 0.75 * t) }'
fi
finish
