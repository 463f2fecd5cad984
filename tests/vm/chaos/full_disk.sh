#!/usr/bin/env bash
# Chaos (issue 8): the state directory is a full filesystem (a 256 kB tmpfs, filled). ebbd must
# keep controlling its cgroups, say once why it cannot persist the originals, persist them
# once space is back, and restore them on SIGTERM (it still holds them in memory).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

state=/tmp/ebb-full
log=/tmp/ebbd.log
mkdir -p "$state"
mount -t tmpfs -o size=256k tmpfs "$state"
dd if=/dev/zero of="$state/filler" bs=4k 2>/dev/null  # stops at ENOSPC
check "state dir is full ($(df -k "$state" | awk 'NR == 2 { print $4 }') kB free)" \
  test "$(df -k "$state" | awk 'NR == 2 { print $4 }')" -eq 0

slice_setup
for cg in idle busy; do new_cgroup "$cg"; done
echo "max 100000" >"$CG/ebb.slice/idle/cpu.max"
echo "10000 100000" >"$CG/ebb.slice/busy/cpu.max"
run_in idle "$bin/ebb-workload" idle
run_in busy "$bin/ebb-workload" cpu --cores 1
"$bin/ebbd" --select 'ebb.slice/*' --state-dir "$state" --tick 200ms --log-level info >"$log" 2>&1 &
ebbd_pid=$!

at_floor() { [[ $(quota idle) != max ]]; }
raised() { (( $(quota busy) > 10000 )) 2>/dev/null || [[ $(quota busy) == max ]]; }
check "ebbd keeps controlling: idle's cpu.max lowered ($(wait_until 60 at_floor; cat "$CG/ebb.slice/idle/cpu.max"))" at_floor
check "ebbd keeps controlling: busy's cpu.max raised ($(wait_until 30 raised; cat "$CG/ebb.slice/busy/cpu.max"))" raised
check "ebbd says why it cannot persist" grep -qE "cannot persist original limits.*No space left on device" "$log"
grep -m1 "cannot persist" "$log"
reports=$(grep -c "cannot persist" "$log")
check "said once, not per tick ($reports lines)" test "$reports" -le 2
check "ebbd still running" kill -0 "$ebbd_pid"

# Space comes back: the next change of the state (a new cgroup adopted) persists everything.
rm -f "$state/filler"
new_cgroup late
wait_until 30 grep -q "adopted .*ebb.slice/late" "$log"
sleep 1
check "originals persisted once space is back" grep -q '"cpu_max": "max 100000"' "$state/originals.json"

stop_ebbd "$ebbd_pid" "$log"
check "SIGTERM restored idle's cpu.max ($(cat "$CG/ebb.slice/idle/cpu.max"))" grep -qx "max 100000" "$CG/ebb.slice/idle/cpu.max"
check "SIGTERM restored busy's cpu.max ($(cat "$CG/ebb.slice/busy/cpu.max"))" grep -qx "10000 100000" "$CG/ebb.slice/busy/cpu.max"
stop_all_in idle; stop_all_in busy
umount "$state"
finish
