#!/usr/bin/env bash
# The scale benchmark under ctest: a real ebb-manager (plaintext loopback, state file on) and
# ebb-loadgen driving NODES simulated nodes (ebb-sim synthetic containers behind their own
# ManagerLink and connection, reporting every 500 ms) in GROUPS budget groups. ebb-loadgen prints
# the allocation round's p50/p99 (the manager's own measurement) and the manager's CPU and
# memory, and fails if any node did not connect or any round summed a group above its budget.
#   tests/manager/scale_test.sh BIN_DIR [NODES] [GROUPS] [SECONDS]
set -uo pipefail
bin=$1 nodes=${2:-1000} groups=${3:-50} seconds=${4:-20}
work=$(mktemp -d)
manager_pid=
trap '[[ -n $manager_pid ]] && kill "$manager_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

port=$((20000 + ($$ * 7) % 20000))
addr=127.0.0.1:$port
cat >"$work/manager.toml" <<TOML
[manager]
listen = "$addr"
plaintext_loopback = true
state_file = "$work/state.json"
TOML
"$bin/ebb-manager" serve -c "$work/manager.toml" >"$work/manager.log" 2>&1 &
manager_pid=$!
for _ in $(seq 100); do
  "$bin/ebb-manager" groups --manager "$addr" --plaintext >/dev/null 2>&1 && break
  sleep 0.1
done

# 1,000 simultaneous registrations on a 2-core machine take a while: up to 120 s to connect.
"$bin/ebb-loadgen" --manager "$addr" --plaintext --nodes "$nodes" --groups "$groups" \
  --duration "$seconds" --settle 120 --manager-pid "$manager_pid"
status=$?
if ((status != 0)); then
  echo "FAIL: ebb-loadgen exited $status (a node did not connect, or a budget was exceeded); manager log tail:"
  tail -n 20 "$work/manager.log"
  exit 1
fi
kill -0 "$manager_pid" 2>/dev/null || { echo "FAIL: ebb-manager died under the load"; exit 1; }
echo "PASS: $nodes nodes in $groups groups, every node connected, no budget exceeded"
