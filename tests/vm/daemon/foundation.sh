#!/usr/bin/env bash
# ebbd on a real kernel (issue 2, must-show a-e): raises a throttled cgroup's cpu.max within
# 2 s, brings an idle one down to its floor within 5 s, keeps a growing one from being OOM-killed,
# restores originals on SIGTERM, keeps them across kill -9 and restart, and drops a removed
# cgroup quietly.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

state=/tmp/ebb-state
log=/tmp/ebbd.log
start_ebbd() {
  "$bin/ebbd" --select 'ebb.slice/*' --state-dir "$state" --tick 200ms --log-level debug >>"$log" 2>&1 &
  ebbd_pid=$!
}
adopted() { grep -q "adopted .*(ebb.slice/$1," "$log"; }

slice_setup
for cg in busy idle grow gone; do new_cgroup "$cg"; done
echo "10000 100000" >"$CG/ebb.slice/busy/cpu.max"
echo "max 100000" >"$CG/ebb.slice/idle/cpu.max"
echo $((100 << 20)) >"$CG/ebb.slice/grow/memory.max"
run_in busy "$bin/ebb-workload" cpu --cores 1
run_in gone "$bin/ebb-workload" idle

# Throttling before ebbd: throttled_usec per second at the static 10% cap.
sleep 1
t0=$(field busy throttled_usec cpu.stat); sleep 1; t1=$(field busy throttled_usec cpu.stat)
throttled_before=$((t1 - t0))
echo "busy: throttled ${throttled_before} us per second at cpu.max 10000 100000"

start_ebbd
wait_until 30 adopted busy || fail "ebbd adopted the cgroups (log: $(tail -5 $log))"
adopted_at=$(now_ms)
run_in grow "$bin/ebb-workload" memory --from 50 --to 300 --over 5 --hold 2
grow_pid=$!

# a. cpu.max raised within 2 s. Timed by ebbd's own log clock (adoption to the first write
# of busy's cpu.max): a shell polling loop under software emulation would time itself.
raised() { [[ $(quota busy) != max ]] && (( $(quota busy) > 10000 )); }
wait_until 20 raised
adopt_ms=$(log_ms "$log" "adopted .*\(ebb.slice/busy,")
raise_ms=$(log_ms "$log" "ebb.slice/busy: .*\[cpu.max=")
if raised && [[ -n $raise_ms ]] && (( raise_ms - adopt_ms <= 2000 )); then
  pass "a: busy cgroup's cpu.max raised $((raise_ms - adopt_ms)) ms after adoption (now $(cat $CG/ebb.slice/busy/cpu.max))"
else
  fail "a: busy cgroup's cpu.max raised ${raise_ms:+$((raise_ms - adopt_ms)) ms after adoption}${raise_ms:-never} (now $(cat $CG/ebb.slice/busy/cpu.max))"
fi
sleep 3
t0=$(field busy throttled_usec cpu.stat); sleep 1; t1=$(field busy throttled_usec cpu.stat)
throttled_after=$((t1 - t0))
check "a: throttled time per second fell (${throttled_before} -> ${throttled_after} us/s)" \
  test "$throttled_after" -lt $((throttled_before / 2))

# b. idle cgroup from "max" down to its floor (0.05 cores = 5000 us per 100 ms) within 5 s.
at_floor() { [[ $(quota idle) != max ]] && (( $(quota idle) <= 5000 )); }
if wait_until 5 at_floor; then
  pass "b: idle cgroup's cpu.max brought to its floor within 5 s ($(cat $CG/ebb.slice/idle/cpu.max))"
else
  fail "b: idle cgroup's cpu.max is $(cat $CG/ebb.slice/idle/cpu.max) after 5 s"
fi

# c. memory growing 50 -> 300 MB over 5 s from a 100 MB memory.max: no OOM kill.
wait "$grow_pid"; grow_status=$?
check "c: growing workload finished normally (exit $grow_status)" test "$grow_status" -eq 0
check "c: no OOM kill (oom_kill $(field grow oom_kill memory.events)), memory.max now $(cat $CG/ebb.slice/grow/memory.max)" \
  test "$(field grow oom_kill memory.events)" -eq 0

# e. a managed cgroup removed mid-run is dropped without an error storm.
stop_all_in gone
wait_until 5 rmdir "$CG/ebb.slice/gone" || fail "e: could not remove the cgroup"
sleep 2
check "e: removed cgroup dropped" grep -q "dropped ebb.slice/gone" "$log"
noise=$(grep -E " (warning|error|critical) " "$log" | grep -c "gone")
check "e: no error storm about it ($noise warnings)" test "$noise" -le 1
check "e: ebbd still running" kill -0 "$ebbd_pid"

# d. SIGTERM restores the originals.
stop_ebbd "$ebbd_pid" "$log"
check "d: SIGTERM restored busy's cpu.max ($(cat $CG/ebb.slice/busy/cpu.max))" grep -qx "10000 100000" "$CG/ebb.slice/busy/cpu.max"
check "d: SIGTERM restored idle's cpu.max ($(cat $CG/ebb.slice/idle/cpu.max))" grep -qx "max 100000" "$CG/ebb.slice/idle/cpu.max"
check "d: SIGTERM restored grow's memory.max ($(cat $CG/ebb.slice/grow/memory.max))" grep -qx $((100 << 20)) "$CG/ebb.slice/grow/memory.max"
check "d: state emptied after restore" sh -c "! grep -q busy $state/originals.json"

# d. kill -9, restart: the recorded originals are kept and the cgroups re-adopted.
start_ebbd
wait_until 10 raised || fail "d: ebbd changed busy's limit before the crash"
kill -9 "$ebbd_pid"; wait "$ebbd_pid" 2>/dev/null
managed=$(cat "$CG/ebb.slice/busy/cpu.max")
check "d: after kill -9 the state file still holds busy's original" grep -q '"cpu_max": "10000 100000"' "$state/originals.json"
: >"$log"
start_ebbd
wait_until 30 adopted busy
sleep 1
check "d: restart re-adopted busy (managed limit was $managed)" adopted busy
check "d: restart kept the recorded original" grep -q '"cpu_max": "10000 100000"' "$state/originals.json"
stop_ebbd "$ebbd_pid" "$log"
check "d: SIGTERM after restart restores the pre-crash original ($(cat $CG/ebb.slice/busy/cpu.max))" \
  grep -qx "10000 100000" "$CG/ebb.slice/busy/cpu.max"

stop_all_in busy; stop_all_in grow
finish
