#!/usr/bin/env bash
# Chaos (issue 8): kill -9 ebbd at 50 random moments while workloads run, restarting it each
# time. Checks that no container's limits ever go below its floor (sampled every ~50 ms
# throughout), that originals.json holds every cgroup's original after each crash, and that a
# final SIGTERM restores the originals.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
# 50 restarts under software emulation are slow: 8 took 7 min with a host load average of 19.
EBB_VM_TIMEOUT=${EBB_VM_TIMEOUT:-1800}
in_vm_or_reexec "$0" "$@"

kills=50
state=/tmp/ebb-state
log=/tmp/ebbd.log
config=/tmp/ebbd.toml
# Floors above the defaults, so that "never below the floor" is a real constraint.
floor_cores_pct=20   # cpu_min = 0.2 cores
floor_mem=$((64 << 20))
cat >"$config" <<TOML
[daemon]
tick = "200ms"
probes = false
[defaults]
cpu_min = 0.2
memory_min = "64M"
TOML
start_ebbd() {
  "$bin/ebbd" --config "$config" --select 'ebb.slice/*' --state-dir "$state" --log-level debug >>"$log" 2>&1 &
  ebbd_pid=$!
}

slice_setup
declare -A orig_cpu=([busy]="30000 100000" [idle]="max 100000" [grow]="50000 100000")
declare -A orig_mem=([busy]=max [idle]=$((512 << 20)) [grow]=$((200 << 20)))
for cg in busy idle grow; do
  new_cgroup "$cg"
  echo "${orig_cpu[$cg]}" >"$CG/ebb.slice/$cg/cpu.max"
  echo "${orig_mem[$cg]}" >"$CG/ebb.slice/$cg/memory.max"
done
run_in busy "$bin/ebb-workload" cpu --cores 1
run_in idle "$bin/ebb-workload" idle
run_in grow "$bin/ebb-workload" memory --from 50 --to 150 --over 20 --hold 600

# The sampler: one perl process (a bash loop is too slow under emulation) reads every limit
# about every 50 ms until told to stop, and writes one line per violation and a round count.
violations=/tmp/violations
samples=/tmp/samples
perl -MTime::HiRes=sleep -e '
  my ($dir, $floor_pct, $floor_mem, $stop, $violations, $samples) = @ARGV;
  my $rounds = 0;
  open(my $v, ">", $violations) or die "$violations: $!";
  $v->autoflush(1);
  sub first_line { open(my $f, "<", $_[0]) or return "max"; my $l = <$f>; chomp $l; $l }
  until (-e $stop) {
    for my $cg (qw(busy idle grow)) {
      my ($q, $p) = split / /, first_line("$dir/$cg/cpu.max");
      print $v "$cg cpu.max $q $p\n" if $q ne "max" && $q * 100 < $p * $floor_pct;
      for my $file (qw(memory.max memory.high)) {
        my $m = first_line("$dir/$cg/$file");
        print $v "$cg $file $m\n" if $m ne "max" && $m < $floor_mem;
      }
    }
    $rounds++;
    sleep 0.05;
  }
  open(my $n, ">", $samples) or die; print $n "$rounds\n";
' "$CG/ebb.slice" "$floor_cores_pct" "$floor_mem" /tmp/stop-sampler "$violations" "$samples" &
sampler_pid=$!

# ebbd logs each decision that writes, at debug level: "PATH: reason [file=value ...]".
wrote() { grep -qE "ebb.slice/[a-z]+: .*\[(cpu|memory)\.[a-z]+=" "$log"; }
originals_kept() {
  local cg
  for cg in busy idle grow; do
    grep -q "\"cpu_max\": \"${orig_cpu[$cg]}\"" "$state/originals.json" 2>/dev/null || return 1
  done
}
lost=0
died=0
changed=0
started=$(now_ms)
# Calibration: how long a restart takes here until ebbd's first write (emulation is slow, more
# so under load). The first start reads the binary cold over 9p, so the second one, a restart
# over existing state like all the others, is timed. Kill moments are then drawn from 0 to 1.5
# times that, so they fall in start-up, adoption, the first writes and steady ticks alike.
# These two runs are the first two kills.
start_ebbd
wait_until 300 wrote || fail "ebbd never wrote a limit (log: $(tail -3 "$log"))"
kill -9 "$ebbd_pid"; wait "$ebbd_pid" 2>/dev/null
originals_kept || { lost=$((lost + 1)); echo "kill 1: originals.json lacks an original"; }
: >"$log"
restarted=$(now_ms)
start_ebbd
wait_until 300 wrote || fail "restarted ebbd never wrote a limit (log: $(tail -3 "$log"))"
first_write_ms=$(( $(now_ms) - restarted ))
span_ms=$((first_write_ms * 3 / 2))
echo "restart to first write: $first_write_ms ms; kill moments drawn from 0-$span_ms ms"
for ((i = 2; i <= kills; i++)); do
  if ((i > 2)); then
    : >"$log"
    start_ebbd
    moment=$(((RANDOM * 32768 + RANDOM) % span_ms))
    sleep "$((moment / 1000)).$(printf '%03d' $((moment % 1000)))"
  fi
  if ! kill -0 "$ebbd_pid" 2>/dev/null; then died=$((died + 1)); fi
  kill -9 "$ebbd_pid" 2>/dev/null; wait "$ebbd_pid" 2>/dev/null
  # Before the first adoption there is nothing to keep; after it, every original must be there.
  if [[ -e $state/originals.json ]] && ! originals_kept; then
    lost=$((lost + 1)); echo "kill $i: originals.json lacks an original: $(cat "$state/originals.json")"
  fi
  wrote && changed=$((changed + 1))
done
echo "$kills kills in $(( ($(now_ms) - started) / 1000 )) s; ebbd had written limits before $changed of them"

check "ebbd was alive at each of the $kills kills ($died had exited early)" test "$died" -eq 0
check "kills fell before and after ebbd's first write ($changed of $kills after)" \
  test "$changed" -gt 0 -a "$changed" -lt "$kills"
check "originals.json held every original after each kill ($lost kills lost one)" test "$lost" -eq 0

# The last run: adopt again, then SIGTERM restores what the cgroups had before the first run.
: >"$log"
start_ebbd
wait_until 30 grep -q "adopted .*ebb.slice/grow" "$log"
sleep 2
stop_ebbd "$ebbd_pid" "$log"; term_status=$?
touch /tmp/stop-sampler; wait "$sampler_pid"
check "SIGTERM: ebbd exited cleanly (exit $term_status)" test "$term_status" -eq 0
for cg in busy idle grow; do
  check "SIGTERM restored $cg's cpu.max ($(cat "$CG/ebb.slice/$cg/cpu.max"))" grep -qx "${orig_cpu[$cg]}" "$CG/ebb.slice/$cg/cpu.max"
  check "SIGTERM restored $cg's memory.max ($(cat "$CG/ebb.slice/$cg/memory.max"))" grep -qx "${orig_mem[$cg]}" "$CG/ebb.slice/$cg/memory.max"
done
n=$(cat "$samples")
check "limits sampled throughout ($n rounds, at least 2 per kill)" test "$n" -ge $((2 * kills))
check "no limit ever below its floor ($(wc -l <"$violations") violations: $(head -3 "$violations" | tr '\n' ';'))" test ! -s "$violations"
check "no OOM kill in grow ($(field grow oom_kill memory.events))" test "$(field grow oom_kill memory.events)" -eq 0

for cg in busy idle grow; do stop_all_in "$cg"; done
finish
