#!/usr/bin/env bash
# Per-event cost of every ebb eBPF program, from kernel.bpf_stats_enabled (run_time_ns /
# run_cnt), under a context-switch-heavy load (bench/probes/switch_load.c), twice: with the
# load in a tracked cgroup (the full path: counters, run-queue waits) and in an untracked one
# (what every other task on the node pays). Needs root; results in docs/probes.md.
#   bench/probes/run.sh [BUILD_DIR] [SECONDS]              # on this host
#   scripts/vm-run.sh -- bench/probes/run.sh [BUILD_DIR]   # in the Debian 6.1 VM
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
seconds=${2:-5}
driver=$build/bin/ebb-probe-driver
[[ $(id -u) -eq 0 ]] || { echo "bench/probes: needs root" >&2; exit 1; }
[[ -x $driver ]] || { echo "bench/probes: build it first: cmake --build $build --target ebb-probe-driver" >&2; exit 1; }
root=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
[[ -n $root ]] || { echo "bench/probes: no cgroup2 mount" >&2; exit 1; }

tmp=$(mktemp -d)
tracked=$root/ebb-bench-probes-$$
untracked=$root/ebb-bench-probes-other-$$
stats_before=$(cat /proc/sys/kernel/bpf_stats_enabled)
driver_pid=
cleanup() {
	local rc=$?
	if [[ -n $driver_pid ]]; then
		kill "$driver_pid" 2>/dev/null || true
		wait "$driver_pid" 2>/dev/null || true
	fi
	echo "$stats_before" >/proc/sys/kernel/bpf_stats_enabled
	# The load's threads leave their cgroup a moment after it exits: rmdir may need a retry.
	for dir in "$tracked" "$untracked"; do
		for _ in $(seq 50); do
			[[ -d $dir ]] || break
			rmdir "$dir" 2>/dev/null || sleep 0.1
		done
	done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

cc -O2 -pthread -o "$tmp/switch_load" "$repo/bench/probes/switch_load.c"
mkdir "$tracked" "$untracked"
echo 1 >/proc/sys/kernel/bpf_stats_enabled

# "name run_time_ns run_cnt" for each of our programs (kernel names are cut to 15 characters).
snapshot() {
	bpftool prog show | awk '
		/ name ebb_/ {
			rt = 0; cnt = 0
			for (i = 1; i <= NF; i++) {
				if ($i == "name") name = $(i + 1)
				if ($i == "run_time_ns") rt = $(i + 1)
				if ($i == "run_cnt") cnt = $(i + 1)
			}
			print name, rt + 0, cnt + 0
		}' | sort
}

# Runs the load in cgroup $1 and prints the per-program cost over that run.
measure() {
	local cgroup=$1 label=$2 rate
	snapshot >"$tmp/before"
	rate=$(sh -c 'echo $$ >"$1/cgroup.procs" && exec "$2" 2 "$3"' sh "$cgroup" "$tmp/switch_load" "$seconds")
	snapshot >"$tmp/after"
	echo "== load in a $label cgroup: $rate"
	printf '%-26s %10s %10s %9s\n' program events events/s ns/event
	join "$tmp/before" "$tmp/after" | awk -v s="$seconds" '{
		n = $5 - $3; t = $4 - $2
		printf "%-26s %10d %10d %9.1f\n", $1, n, n / s, n ? t / n : 0
	}'
}

"$driver" --cgroup-root "$root" --select "${tracked#"$root"/}" --duration "$((3 * seconds + 10))s" \
	>"$tmp/probe.out" 2>&1 &
driver_pid=$!
for _ in $(seq 100); do
	snapshot | grep -q ebb_sched_switc && break
	sleep 0.1
done
snapshot | grep -q ebb_sched_switc || { cat "$tmp/probe.out"; echo "bench/probes: probes did not attach" >&2; exit 1; }

echo "kernel $(uname -r), $(nproc) CPUs, ${seconds}s per run"
measure "$tracked" tracked
measure "$untracked" "untracked"
