#!/usr/bin/env bash
# ebbctl against ebbd on real cgroups (issue 6, must-show "ebbctl ... in the VM on real
# cgroups"): ps and inspect show the real cgroup with a busy workload, `set --cpu-max` is
# observed applied in the cgroup's own cpu.max, `events -f` receives a decision, and
# SIGTERM still restores the original limit after the API changed the policy.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

state=/tmp/ebb-state
log=/tmp/ebbd.log
socket=/tmp/ebb-run/ebbd.sock
# Every call bounded: a daemon that stopped answering must fail the check, not hang the VM.
# Under software emulation on a loaded host an answer can take longer than ebbctl's default
# 10 s, hence --timeout.
ctl() { timeout 90 "$bin/ebbctl" --socket "$socket" --timeout 60s "$@"; }
exit_status() { "$@"; echo $?; }  # prints the command's exit status (its stdout first)
adopted() { grep -q "adopted .*(ebb.slice/$1," "$log"; }

slice_setup
new_cgroup busy
echo "50000 100000" >"$CG/ebb.slice/busy/cpu.max"
# 0.8 cores: throttled at 0.5, and some of the VM's 2 CPUs left for ebbd and ebbctl.
run_in busy "$bin/ebb-workload" cpu --cores 0.8

metrics=http://127.0.0.1:9464/metrics
"$bin/ebbd" --select 'ebb.slice/*' --state-dir "$state" --socket "$socket" --metrics-listen 127.0.0.1:9464 \
  --tick 200ms --log-level debug >>"$log" 2>&1 &
ebbd_pid=$!
wait_until 60 adopted busy || fail "ebbd adopted busy (log: $(tail -5 "$log"))"
# The first answer can take a while under software emulation (the probes load first); the
# checks below start once ebbd answers at all.
answering() { ctl node >/dev/null 2>&1; }
started_ms=$(now_ms)
wait_until 120 answering || fail "ebbd answers on $socket (log: $(tail -5 "$log"))"
echo "ebbd answered on its socket $(( $(now_ms) - started_ms )) ms after adopting busy"

# ps: the real cgroup, its limit as read from cpu.max, its mode.
ps_out=$(ctl ps); ps_status=$?
echo "$ps_out"
check "ps exits 0 ($ps_status)" test "$ps_status" -eq 0
check "ps lists busy in auto mode" grep -qE '^busy +[0-9.]+ .* auto$' <<<"$ps_out"
json_out=$(ctl -o json ps --select 'ebb.slice/busy')
check "ps -o json names the real cgroup" grep -q '"path":"ebb.slice/busy"' <<<"$json_out"

# inspect: details and a decision in words once ebbd has acted on the throttled workload.
decided() { ctl inspect busy | grep -qE 'the (learner|fallback|heuristic) (raised|lowered|set) '; }
wait_until 60 decided
inspect_out=$(ctl inspect busy); inspect_status=$?
echo "$inspect_out"
check "inspect exits 0 ($inspect_status)" test "$inspect_status" -eq 0
check "inspect shows the cgroup's path" grep -q 'path: *ebb.slice/busy' <<<"$inspect_out"
check "inspect explains a recent decision in words" \
  grep -qE 'the (learner|fallback|heuristic) (raised|lowered|set) ' <<<"$inspect_out"
check "inspect of an unknown container exits 1" test "$(exit_status ctl inspect nope)" -eq 1

# events -f: started before the change; the first decision about busy ends it, the one that
# applies the new bound or one of the learner's own before it. A CI run saw the stream open,
# take such a decision and close between two polls of the gauge, hence "or already done".
events_out=/tmp/events.out
ctl events -f --count 1 --kind decision --select busy >"$events_out" 2>&1 &
events_pid=$!
subscribed() { curl -sf "$metrics" | grep -qx 'ebbd_event_subscribers 1' || ! kill -0 "$events_pid" 2>/dev/null; }
wait_until 60 subscribed || fail "events -f subscribed (metrics: $(curl -sf "$metrics" | grep subscribers))"

# set: a CPU ceiling of 0.2 cores. The workload wants 0.8 cores, so the controller sits at
# the ceiling: cpu.max's quota must come down to at most 20000 us per 100000 us period.
set_out=$(ctl set busy --cpu-max 0.2); set_status=$?
echo "$set_out"
check "set exits 0 ($set_status)" test "$set_status" -eq 0
check "set reports the policy applies to busy" grep -q 'it applies now to ebb.slice/busy' <<<"$set_out"
set_ms=$(now_ms)
capped() { local q; q=$(quota busy); [[ $q != max ]] && ((q <= 20000)); }
if wait_until 60 capped; then
  pass "set --cpu-max 0.2 applied in the real cgroup within $(( $(now_ms) - set_ms )) ms (cpu.max now $(cat "$CG/ebb.slice/busy/cpu.max"))"
else
  fail "set --cpu-max 0.2 not applied: cpu.max is $(cat "$CG/ebb.slice/busy/cpu.max") after 60 s"
fi
sleep 2
check "the ceiling holds ($(cat "$CG/ebb.slice/busy/cpu.max"))" capped
check "inspect shows the API policy" grep -q 'policy: .*\.\.0\.20 cores' <<<"$(ctl inspect busy)"

wait "$events_pid"; events_status=$?
cat "$events_out"
check "events -f exits 0 after one decision ($events_status)" test "$events_status" -eq 0
check "events -f received a decision about busy" grep -qE '^[0-9:.]+Z decision busy: cpu ' "$events_out"

check "the policy persisted in the state directory" grep -q 'busy' "$state/policies.json"

# SIGTERM: the API's policy changes what ebbd writes, not what it restores.
kill -TERM "$ebbd_pid"; wait "$ebbd_pid"
check "SIGTERM restored busy's original cpu.max ($(cat "$CG/ebb.slice/busy/cpu.max"))" \
  grep -qx "50000 100000" "$CG/ebb.slice/busy/cpu.max"
check "ebbctl says ebbd is gone (exit 3)" test "$(exit_status ctl ps)" -eq 3

stop_all_in busy
echo "in the VM for ${SECONDS} s"
finish
