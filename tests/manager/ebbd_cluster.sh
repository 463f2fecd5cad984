#!/usr/bin/env bash
# ebbd's own manager flags on loopback (plaintext, development mode): `ebbd --simulate` and a
# real `ebbd --manager` on a fake cgroup tree both register with ebb-manager, and the real one
# caps its budget group's container at the share the manager gives it: CPU, and memory, where a
# share below the container's usage is carried by memory.high while memory.max stays above usage.
#   tests/manager/ebbd_cluster.sh BIN_DIR
set -uo pipefail
bin=$1
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
check() {
  local what=$1; shift
  if "$@"; then echo "PASS: $what"; passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
wait_for() { local n=$(($1 * 10)); shift; until "$@"; do ((n-- > 0)) || return 1; sleep 0.1; done; }

port=$((20000 + $$ % 20000))
addr=127.0.0.1:$port
cat >"$work/manager.toml" <<TOML
[manager]
listen = "$addr"
plaintext_loopback = true
lease = "4s"
[allocation]
reserve_cpus = 0
TOML
"$bin/ebb-manager" serve -c "$work/manager.toml" >"$work/manager.log" 2>&1 &
pids+=($!)
admin() { "$bin/ebb-manager" "$@" --manager "$addr" --plaintext; }
wait_for 20 admin groups >/dev/null 2>&1
admin set-group web --cpus 1.5 >/dev/null

# A simulated node: one container of group web wanting 2 cores.
mkdir -p "$work/trace"
printf 'time_s,container,cpu_cores,memory_bytes\n0,web/sim1,2,100000000\n3600,web/sim1,2,100000000\n' >"$work/trace/web.csv"
"$bin/ebbd" --simulate "$work/trace" --simulate-cpus 4 --manager "$addr" --manager-plaintext --node-id sim-node \
  >"$work/sim.log" 2>&1 &
pids+=($!)

# A real ebbd on a fake tree: one busy, throttled container in group web.
root=$work/cg
mkdir -p "$root/ebb.slice/api"
echo "cpu memory" >"$root/ebb.slice/cgroup.subtree_control"
echo "100000 100000" >"$root/ebb.slice/api/cpu.max"
echo max >"$root/ebb.slice/api/memory.high"; echo max >"$root/ebb.slice/api/memory.max"
echo $((50 << 20)) >"$root/ebb.slice/api/memory.current"
printf '[defaults]\ngroup = "web"\n' >"$work/ebbd.toml"
"$bin/ebbd" --config "$work/ebbd.toml" --cgroup-root "$root" --state-dir "$work/state" --tick 100ms \
  --manager "$addr" --manager-plaintext --node-id real-node >"$work/ebbd.log" 2>&1 &
pids+=($!)
# Keep it busy and throttled so that it wants more than its share.
(usage=0; periods=0; while sleep 0.05; do usage=$((usage + 50000)); periods=$((periods + 1))
  printf 'usage_usec %d\nnr_periods %d\nnr_throttled %d\nthrottled_usec 0\n' $usage $periods $periods \
    >"$root/ebb.slice/api/cpu.stat"; done) &
pids+=($!)

registered() { admin nodes 2>/dev/null | grep -q "\"$1\""; }
check "ebbd --simulate registered with the manager" wait_for 20 registered sim-node
check "ebbd --manager registered with the manager" wait_for 20 registered real-node
quota() { awk '{ print $1 }' "$root/ebb.slice/api/cpu.max"; }
capped() { local q; q=$(quota); [[ $q != max ]] && ((q <= 150000 + 1000)); }
sleep 3
admin get-group web >"$work/group.json" 2>&1
check "the real node's container stays within the group's budget of 1.5 cores (cpu.max $(quota))" capped
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$work/group.json"; }
check "both nodes' demand reached the manager (web wants $(field wantedCpuCores) cores; the simulated node alone wants 2)" \
  awk -v w="$(field wantedCpuCores)" 'BEGIN { exit !(w > 2.05) }'
check "the manager allocated at most web's budget ($(field allocatedCpuCores) of 1.5 cores)" \
  awk -v a="$(field allocatedCpuCores)" 'BEGIN { exit !(a <= 1.5 + 1e-9) }'

# Memory: a group budget of 80 MiB, split max-min between the simulated node (95 MiB used) and
# the real one (50 MiB used), gives the real node 40 MiB: less than its container uses.
admin set-group web --cpus 1.5 --memory 80M >/dev/null
mib=$((1 << 20))
memory_share() { admin nodes 2>/dev/null | "$bin/manager_json_probe" node-share - real-node web memoryBytes; }
file_bytes() { local v; v=$(cat "$root/ebb.slice/api/$1"); [[ $v == max ]] && echo $((1 << 62)) || echo "$v"; }
share_below_usage() { local s; s=$(memory_share); [[ -n $s ]] && ((s > 0 && s < 50 * mib)); }
carried_by_high() { local s; s=$(memory_share); [[ -n $s ]] && (($(file_bytes memory.high) <= s)); }
wait_for 20 share_below_usage
check "the real node's memory share ($(memory_share) bytes) is below its container's usage" share_below_usage
wait_for 20 carried_by_high
check "memory.high carries the share ($(file_bytes memory.high) <= $(memory_share) bytes)" carried_by_high
check "memory.max stays above usage plus the 32 MiB margin (memory.max $(file_bytes memory.max))" \
  test "$(file_bytes memory.max)" -ge $((50 * mib + 32 * mib))
check "ebbd reports the shortfall" wait_for 10 grep -q "more memory than this node's share" "$work/ebbd.log"
# A budget that covers usage ends the shortfall.
admin set-group web --cpus 1.5 --memory 1G >/dev/null
check "ebbd reports the group back within its memory share" wait_for 20 grep -q "back within this node's memory share" \
  "$work/ebbd.log"

echo "$passed passed, $failed failed"
((failed == 0))
