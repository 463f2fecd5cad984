#!/usr/bin/env bash
# The demo's scenario, run as root where cgroup v2 with cpu and memory is mounted at
# /sys/fs/cgroup (the host or the VM). Usage: scenario.sh SECONDS_PER_PHASE
# EBB_DEMO_KEEP=DIR (default: $EBB_VM_OUT, the VM's results share) keeps both phases' tables
# (demo-static.tsv, demo-ebbd.tsv: workload, cpu limit, used, slack, throttled s and %, memory
# headroom, peak, OOM kills) and ebbd's log there; EBB_BIN picks the binaries.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${EBB_BIN:-$repo/build/bin}
seconds=${1:-15}
CG=/sys/fs/cgroup
slice=$CG/ebb-demo.slice
workloads=(bursty idle grower)
work=$(mktemp -d)

# The hand-set limits a user would pick: enough for the bursty service's average, a generous
# round number for the idle one, and a memory limit below where the grower ends up.
static_limits() {
  echo "50000 100000" >"$slice/bursty/cpu.max"; echo $((256 << 20)) >"$slice/bursty/memory.max"
  echo "100000 100000" >"$slice/idle/cpu.max";  echo $((512 << 20)) >"$slice/idle/memory.max"
  echo "50000 100000" >"$slice/grower/cpu.max"; echo $((200 << 20)) >"$slice/grower/memory.max"
}

# The cgroups exist with their static limits before anything runs in them, as a container's
# cgroup does before its process starts; ebbd, in phase 2, manages them from then on.
make_cgroups() {
  local cg
  for cg in "${workloads[@]}"; do mkdir -p "$slice/$cg"; done
  static_limits
}

launch_workloads() {
  launch() {
    local cg=$1; shift
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$slice/$cg" "$@" >/dev/null 2>&1 &
    disown $!  # killed on purpose later; no job-control noise
  }
  launch bursty "$bin/ebb-workload" bursty --low 0.1 --high 0.9 --period 4
  launch idle "$bin/ebb-workload" idle
  launch grower "$bin/ebb-workload" memory --from 50 --to 300 --over "$((seconds * 2 / 3))" --hold 3600
}

stop_workloads() {
  local cg pids
  for cg in "${workloads[@]}"; do
    pids=$(cat "$slice/$cg/cgroup.procs" 2>/dev/null || true)
    [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
  done
  sleep 0.5
  for cg in "${workloads[@]}"; do rmdir "$slice/$cg" 2>/dev/null || true; done
}

cleanup() {
  [[ -n ${ebbd_pid:-} ]] && kill -TERM "$ebbd_pid" 2>/dev/null && wait "$ebbd_pid" 2>/dev/null
  stop_workloads
  rmdir "$slice" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$slice"
echo "+cpu +memory" >"$slice/cgroup.subtree_control"
meter() { "$bin/ebb-meter" --seconds "$seconds" "${workloads[@]/#/ebb-demo.slice/}"; }

echo "phase 1: static limits for ${seconds}s"
make_cgroups
launch_workloads
meter >"$work/static.tsv"
stop_workloads

echo "phase 2: ebbd for ${seconds}s (starting from the same static limits)"
make_cgroups
"$bin/ebbd" --select 'ebb-demo.slice/*' --state-dir "$work/state" --tick 200ms --log-level debug >"$work/ebbd.log" 2>&1 &
ebbd_pid=$!
# Loading the eBPF probes takes a few seconds under software emulation. Had the workloads
# started first, the grower would have been OOM-killed under its static memory.max before ebbd
# took over: they start once ebbd has adopted their cgroups.
for _ in $(seq 300); do
  [[ $(grep -c "adopted" "$work/ebbd.log") -ge ${#workloads[@]} ]] && break
  sleep 0.1
done
launch_workloads
meter >"$work/ebbd.tsv"
kill -TERM "$ebbd_pid"; wait "$ebbd_pid" || true
ebbd_pid=
keep=${EBB_DEMO_KEEP:-${EBB_VM_OUT:-}}
if [[ -n $keep ]]; then
  mkdir -p "$keep"
  for f in static.tsv ebbd.tsv ebbd.log; do cp "$work/$f" "$keep/demo-$f"; done
fi

echo
printf '%-8s %-7s %10s %10s %10s %10s %10s %12s %9s %5s\n' workload limits "cpu limit" "cpu used" "cpu slack" \
  "throttled" "thr. per." "mem headroom" "mem peak" OOMs
printf '%-8s %-7s %10s %10s %10s %10s %10s %12s %9s %5s\n' "" "" "(cores)" "(cores)" "(cores)" "(s)" "(%)" "(MB)" "(MB)" ""
for label in static ebbd; do
  while IFS=$'\t' read -r name limit used slack thr_s thr_pct headroom peak ooms; do
    printf '%-8s %-7s %10s %10s %10s %10s %10s %12s %9s %5s\n' "${name##*/}" "$label" "$limit" "$used" "$slack" \
      "$thr_s" "$thr_pct" "$headroom" "$peak" "$ooms"
  done <"$work/$label.tsv"
done
echo
echo "cpu slack: mean of (cpu.max - usage); throttled: CFS throttled time and share of periods;"
echo "mem headroom: mean of (memory.max - memory.current); 'max' counts as the whole node."
echo "ebbd made $(grep -c '\[cpu.max=\|\[memory.max=\|\[memory.high=' "$work/ebbd.log" || true) limit changes and restored the static limits on SIGTERM."
echo "probes: $(grep -o 'probes active: .*' "$work/ebbd.log" | head -1)"
