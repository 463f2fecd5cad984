#!/usr/bin/env bash
# ebbd's own CPU use managing 200 cgroups at a 100 ms tick, as a fraction of one core (target:
# under 1%). The cgroups are a fake tree on tmpfs (this host's cgroup hierarchy is v1), so the
# figure covers ebbd's reading, deciding and writing, not the kernel's cgroupfs; the eBPF probes
# load for real when run as root. CPU time is utime+stime from /proc/PID/stat, which other load
# on the machine does not inflate the way it does wall time.
# The fake cgroups are idle: no task of theirs runs (the probes' CPU counters stay put) and
# their cpu.stat does not move, so ebbd's quiet ticks skip them. EBB_OVERHEAD_BUSY=N rewrites
# the cpu.stat of the first N cgroups every 100 ms (from a shell loop whose CPU is not counted),
# as if their tasks ran: those are read every tick. EBB_OVERHEAD_ARGS adds ebbd flags (e.g.
# --config FILE with probes = false).
#   bench/daemon/overhead.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
seconds=${2:-30}
count=200
root=$(mktemp -d /dev/shm/ebb-overhead.XXXXXX)
busy=${EBB_OVERHEAD_BUSY:-0}
pid='' writer=''
trap 'kill $pid $writer 2>/dev/null; wait $pid $writer 2>/dev/null; rm -rf "$root"' EXIT

mkdir -p "$root/ebb.slice"
echo "cpu memory" >"$root/ebb.slice/cgroup.subtree_control"
for i in $(seq 1 $count); do
  d=$root/ebb.slice/c$(printf %03d "$i")
  mkdir "$d"
  printf 'usage_usec %d\nnr_periods 100\nnr_throttled 0\nthrottled_usec 0\n' $((i * 1000)) >"$d/cpu.stat"
  echo "50000 100000" >"$d/cpu.max"
  echo 100 >"$d/cpu.weight"
  echo $((100 << 20)) >"$d/memory.current"
  echo max >"$d/memory.high"; echo max >"$d/memory.max"
  printf 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n' >"$d/memory.events"
  printf 'anon 73400320\nfile 31457280\nactive_file 20971520\ninactive_file 10485760\n' >"$d/memory.stat"
  for p in cpu memory io; do
    printf 'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n' >"$d/$p.pressure"
  done
done

if ((busy > 0)); then
  (
    usage=0
    while :; do
      usage=$((usage + 10000))
      for ((i = 1; i <= busy; i++)); do
        printf -v name c%03d "$i"
        printf 'usage_usec %d\nnr_periods 100\nnr_throttled 0\nthrottled_usec 0\n' $((i * 1000 + usage)) \
          >"$root/ebb.slice/$name/cpu.stat"
      done
      sleep 0.1
    done
  ) &
  writer=$!
fi

# shellcheck disable=SC2086  # EBB_OVERHEAD_ARGS is a list of flags
"$build/bin/ebbd" --cgroup-root "$root" --select 'ebb.slice/*' --tick 100ms --state-dir "$root/state" \
  --log-level warn ${EBB_OVERHEAD_ARGS:-} >"$root/ebbd.log" 2>&1 &
pid=$!
sleep 5  # adoption and probe loading are start-up, not steady state
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
t0=$(ticks); start=$(date +%s.%N)
sleep "$seconds"
[[ -n ${EBB_PROFILE:-} ]] && perf record -q -e cpu-clock -g -p $pid -o "$EBB_PROFILE" -- sleep 8 >/dev/null 2>&1
t1=$(ticks); end=$(date +%s.%N)
hz=$(getconf CLK_TCK)
awk -v c=$((t1 - t0)) -v b="$busy" -v hz="$hz" -v s="$start" -v e="$end" -v n=$count 'BEGIN {
  share = c / hz / (e - s) * 100
  printf "ebbd managing %d cgroups (%d busy) at a 100 ms tick: %.2f%% of one core (%.2f s CPU over %.1f s)\n", n, b, share, c / hz, e - s
  exit !(share < 1.0)
}'
