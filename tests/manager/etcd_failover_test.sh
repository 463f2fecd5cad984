#!/usr/bin/env bash
# Three ebb-manager replicas on a single-member etcd on loopback (started here, on free ports, its
# data in a temp dir), three simulated nodes given every replica's address: node-a and node-b
# first dial one follower each, node-c the leader, and each stays where it connected.
#   etcd_failover_test.sh BIN_DIR kill-leader | pause-leader | restart-etcd
# All first: the nodes on the followers get the leader's allocations, following node-a's demand
# (1 core of web, then 3 from 20.1 s on).
# kill-leader:  the leader is killed (-9); a new leader allocates within 5 s; the nodes on the
#               followers keep their streams and get the new leader's rounds within 5 s; node-c
#               fails over; no group or budget is lost; the killed replica, restarted, rejoins as
#               a follower.
# pause-leader: the leader is stopped (SIGSTOP); a successor leads, the nodes on the followers
#               stay, node-c moves after its lease; the old leader, resumed, is fenced: it sends
#               no round.
# kill-follower: node-a's follower is killed (-9): node-a streams again through another replica
#               (the leader refuses it as a duplicate until it has heard nothing from the dead
#               follower for 3 s), node-b and node-c keep their streams.
# restart-etcd: etcd is killed (-9) and restarted on the same data; meanwhile the managers and
#               the nodes keep the last allocations; then allocation resumes (a budget change is
#               followed).
# All: no round of either replica, and from the steady state on no sample of the nodes' received
# budgets (every 100 ms), sums above a group's budget.
# Exit 0 pass, 1 fail, 77 skip (etcd not installed: scripts/deps.sh installs it).
set -uo pipefail
usage="usage: etcd_failover_test.sh BIN_DIR kill-leader|pause-leader|kill-follower|restart-etcd"
bin=${1:?$usage}
mode=${2:?$usage}
command -v etcd >/dev/null && command -v etcdctl >/dev/null || { echo "SKIP: etcd not installed (scripts/deps.sh)"; exit 77; }
probe=$bin/manager_json_probe
work=$(mktemp -d /tmp/ebb-etcd-XXXXXX)
pids=()
failures=0
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if ((failures == 0)); then rm -rf "$work"; else echo "logs kept in $work"; fi
}
trap cleanup EXIT
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
now_ms() { date +%s%3N; }
# wait_for SECONDS CMD...: until CMD succeeds, at most SECONDS of wall time (slow commands under
# load count too).
wait_for() { local end=$((SECONDS + $1)); shift; until "$@"; do ((SECONDS < end)) || return 1; sleep 0.1; done; }
# A port nobody listens on (a race with other tests is possible but unlikely in this range).
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
  done
}

etcd_client=$(free_port) etcd_peer=$(free_port)
endpoint=127.0.0.1:$etcd_client
start_etcd() {
  etcd --name ebbtest --data-dir "$work/etcd" \
    --listen-client-urls "http://$endpoint" --advertise-client-urls "http://$endpoint" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "ebbtest=http://127.0.0.1:$etcd_peer" >>"$work/etcd.log" 2>&1 &
  etcd_pid=$!
  pids+=($etcd_pid)
}
etcd_ok() { ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --command-timeout=2s endpoint health >/dev/null 2>&1; }
leader_address() { ETCDCTL_API=3 etcdctl --endpoints "$endpoint" --command-timeout=2s get /ebb/test/leader --print-value-only 2>/dev/null; }

# The node lease: long enough to hold allocations through an etcd restart on a loaded machine,
# short in pause-leader, where the nodes leave the stopped leader once it ends.
node_lease=30s
[[ $mode == pause-leader ]] && node_lease=8s
declare -A port pid
port[1]=$(free_port) port[2]=$(free_port) port[3]=$(free_port)
address() { echo "127.0.0.1:${port[$1]}"; }
answers() { "$bin/ebb-manager" groups --manager "127.0.0.1:${port[$1]}" --plaintext >/dev/null 2>&1; }
start_manager() {  # start_manager 1|2|3
  local attempt
  for attempt in 1 2 3; do
    launch_manager "$1"
    wait_for 60 eval "answers $1 || ! kill -0 ${pid[$1]} 2>/dev/null"
    answers "$1" && break
    # Another test may have bound the port between free_port and the replica's bind.
    if grep -q "cannot listen" "$work/manager$1.log" && ((attempt < 3)); then
      echo "replica $1: port ${port[$1]} taken, trying another"
      port[$1]=$(free_port)
      continue
    fi
    fail "replica $1 does not answer"
    break
  done
  "$bin/ebb-manager" watch --manager "127.0.0.1:${port[$1]}" --plaintext >>"$work/watch$1.jsonl" 2>/dev/null &
  pids+=($!)
}
launch_manager() {
  cat >"$work/manager$1.toml" <<TOML
[manager]
listen = "127.0.0.1:${port[$1]}"
plaintext_loopback = true
lease = "$node_lease"
[allocation]
reserve_cpus = 0
[etcd]
endpoints = ["$endpoint"]
prefix = "/ebb/test/"
lease_ttl = "2s"
request_timeout = "1s"
TOML
  "$bin/ebb-manager" serve -c "$work/manager$1.toml" >>"$work/manager$1.log" 2>&1 &
  pid[$1]=$!
  pids+=(${pid[$1]})
}
admin() { "$bin/ebb-manager" "$@" --manager "$replicas" --plaintext; }
replica_of() { local r; for r in 1 2 3; do [[ $1 == $(address $r) ]] && echo $r; done; }
# The two replicas other than $1, in order.
others() { local r; for r in 1 2 3; do ((r != $1)) && echo -n "$r "; done; }

for attempt in 1 2 3; do
  start_etcd
  wait_for 60 eval 'etcd_ok || ! kill -0 $etcd_pid 2>/dev/null'
  etcd_ok && break
  # As for the replicas: a port can be taken between free_port and etcd's bind.
  if grep -q "address already in use" "$work/etcd.log" && ((attempt < 3)); then
    echo "etcd: a port was taken, trying others"
    kill -9 "$etcd_pid" 2>/dev/null
    rm -rf "$work/etcd"
    : >"$work/etcd.log"
    etcd_client=$(free_port) etcd_peer=$(free_port)
    endpoint=127.0.0.1:$etcd_client
    continue
  fi
  fail "etcd did not start on $endpoint"
  exit 1
done
start_manager 1
start_manager 2
start_manager 3
replicas=$(address 1),$(address 2),$(address 3)
wait_for 30 eval '[[ -n $(leader_address) ]]' || { fail "no replica became leader"; exit 1; }
leader=$(replica_of "$(leader_address)")
read -r f1 f2 < <(others "$leader")
echo "leader: replica $leader ($(leader_address)), followers $f1 and $f2"
wait_for 30 admin set-group web --cpus 6 >/dev/null 2>&1 || fail "set-group web through the replica list"
admin set-group batch --cpus 3 --priority best-effort >/dev/null || fail "set-group batch"

# Three nodes of 4 cores; on each, web wants 3 cores (node-a: 1 until 20 s) and batch 2: both
# groups are over budget. A node stays on the first replica that takes it.
trace() {  # trace DIR WEB_CORES_UNTIL_20S
  mkdir -p "$1"
  printf 'time_s,container,cpu_cores,memory_bytes\n0,web/w,%s,100000000\n20,web/w,%s,100000000\n20.1,web/w,3,100000000\n3600,web/w,3,100000000\n' \
    "$2" "$2" >"$1/web.csv"
  printf 'time_s,container,cpu_cores,memory_bytes\n0,batch/b,2,100000000\n3600,batch/b,2,100000000\n' >"$1/batch.csv"
}
trace "$work/trace-a" 1
trace "$work/trace" 3
declare -A first_on=([a]=$f1 [b]=$f2 [c]=$leader)
for n in a b c; do
  first=${first_on[$n]}
  list=$(address "$first"); for r in $(others "$first"); do list+=,$(address "$r"); done
  dir=$work/trace; [[ $n == a ]] && dir=$work/trace-a
  "$bin/ebb-simnode" "$dir" --manager "$list" --plaintext --node-id "node-$n" --cpus 4 \
    --status-file "$work/node-$n.json" >"$work/node-$n.log" 2>&1 &
  pids+=($!)
done

# What the nodes hold, every 100 ms: "unix_ms web batch a_web a_wants": each group's budgets
# summed over the nodes' status files (one JSON line each, replaced atomically), then node-a's
# web budget and web demand.
held() {
  cat "$work"/node-?.json 2>/dev/null | sed -n 's/.*"group_budgets":{\([^}]*\)}.*/\1/p' | tr ',' '\n' |
    awk -F: '{ gsub(/"/, "", $1); sum[$1] += $2 } END { printf "%.6f %.6f", sum["web"], sum["batch"] }'
  local a
  a=$(cat "$work/node-a.json" 2>/dev/null)
  printf ' %s %s' "$(sed -n 's/.*"group_budgets":{[^}]*"web":\([0-9.e+-]*\).*/\1/p' <<<"$a")" \
    "$(sed -n 's/.*"demand":{[^}]*"web":\([0-9.e+-]*\).*/\1/p' <<<"$a")"
}
(while sleep 0.1; do echo "$(now_ms) $(held)"; done) >"$work/held.txt" &
pids+=($!)

all_allocated() {
  local node
  for node in a b c; do [[ $("$probe" get "$work/node-$node.json" /local_only 2>/dev/null) == false ]] || return 1; done
}
check "the three nodes hold allocations from the leader" wait_for 60 all_allocated
# ListNodes: on the leader, a node streaming to a follower is connected, with that replica named.
nodes_of() { "$bin/ebb-manager" nodes --manager "$(address $1)" --plaintext 2>/dev/null; }
connected_to() { nodes_of "$1" | grep -o '"connected":true' | wc -l; }
group_field() { "$bin/ebb-manager" get-group "$2" --manager "$(address $1)" --plaintext 2>/dev/null | "$probe" get - "/$3"; }
# node-a's last sample: "wants budget" (web cores).
a_sample() { tail -1 "$work/held.txt" | awk '{ print $5, $4 }'; }
a_holds() { a_sample | awk -v w="$1" -v b="$2" '{ exit !($1 == w && $2 > b - 0.01 && $2 < b + 0.01) }'; }
check "node-a, on follower $f1, holds 1 core of web while it wants 1 (the others want 3 each; web has 6)" \
  wait_for 60 a_holds 1 1
relayed=$(nodes_of "$leader" | grep -o '"replica":"127[^"]*"' | wc -l)
check "the leader lists node-a and node-b as connected through the followers ($relayed relayed)" test "$relayed" = 2
check "node-a, on follower $f1, holds 2 cores of web once it wants 3" wait_for 60 a_holds 3 2
# The step (1 to 3 cores, more than the 1-core shift threshold) calls for a round at once: how
# long it took, relay both ways and the 100 ms sampling included.
step=$(awk '!w && $5 != "" && $5 >= 3 { w = $1 } w && $4 > 1.99 && $4 < 2.01 { print $1 - w; exit }' "$work/held.txt")
echo "node-a, on follower $f1: ${step:-?} ms from the first sample wanting 3 cores to the first holding 2"
sleep 2

# Under load a lease can lapse and the leadership move before the failure is injected.
leader=$(replica_of "$(leader_address)")
read -r f1 f2 < <(others "$leader")
# The nodes' samples are checked from here: while the nodes join one by one, each round moves
# shares between them, and two nodes apply a round milliseconds apart (the single manager's
# known overlap, docs/manager.md), which is not what these tests are about.
steady_at=$(now_ms)
# A watch sends only the rounds its replica allocated; a follower's rounds from here on are new.
rounds_of() { wc -l <"$work/watch$1.jsonl"; }
declare -A rounds_at
for r in $f1 $f2; do rounds_at[$r]=$(rounds_of "$r"); done
# The follower that leads now (it published a round): "" while neither does.
new_leader() { local r; for r in $f1 $f2; do (($(rounds_of "$r") > rounds_at[$r])) && { echo "$r"; return; }; done; }
first_round_of() { tail -n +$((rounds_at[$1] + 1)) "$work/watch$1.jsonl" | head -1 | "$probe" get - "/$2"; }
reconnects() { grep -c "reconnecting" "$work/node-$1.log"; }
declare -A reconnects_at
for n in a b c; do reconnects_at[$n]=$(reconnects $n); done
# Rounds carry their leader's epoch in the upper 32 bits: a later leader's rounds are larger.
hold_round() { local n; for n in a b; do (($("$probe" get "$work/node-$n.json" /round 2>/dev/null || echo 0) >= $1)) || return 1; done; }
# followers_stay NEW_LEADER FAILED_AT_MS: node-a and node-b, on the followers, kept their streams
# and got the new leader's rounds within 5 s of the failure.
followers_stay() {
  local round
  round=$(first_round_of "$1" round)
  wait_for 30 hold_round "${round:-0}"
  local took=$(( $(now_ms) - $2 ))
  check "node-a and node-b hold the new leader's rounds (from $round) $took ms after the failure (limit 5000 ms)" \
    test "$took" -le 5000
  check "node-a and node-b kept their streams (reconnects: a ${reconnects_at[a]} -> $(reconnects a), b ${reconnects_at[b]} -> $(reconnects b))" \
    test "$(reconnects a)/$(reconnects b)" = "${reconnects_at[a]}/${reconnects_at[b]}"
}
if [[ $mode == kill-leader ]]; then
  killed_at=$(now_ms)
  kill -9 "${pid[$leader]}"
  wait_for 30 eval '[[ -n $(new_leader) ]]'
  follower=$(new_leader)
  first=$(first_round_of "$follower" unixMs)
  took=$(( ${first:-999999999999999} - killed_at ))
  check "replica $follower leads and allocates ${took} ms after the leader was killed (limit 5000 ms)" \
    test "$took" -le 5000
  check "the leader key names replica $follower" test "$(leader_address)" = "$(address $follower)"
  followers_stay "$follower" "$killed_at"
  wait_for 30 eval '[[ $(connected_to $follower) == 3 ]]'
  check "node-c failed over ($(( $(now_ms) - killed_at )) ms after the kill) and the three nodes hold allocations" \
    all_allocated
  check "replica $follower allocates for the three nodes (its own and the other follower's)" test "$(connected_to $follower)" = 3
  check "no group or budget lost: web $(group_field $follower web cpuCores) cores, batch $(group_field $follower batch cpuCores) cores" \
    test "$(group_field $follower web cpuCores)/$(group_field $follower batch cpuCores)" = "6/3"
  rounds_before=$(rounds_of "$leader")
  start_manager "$leader"
  wait_for 30 eval '[[ -n $(group_field $leader web cpuCores) ]]'
  check "the restarted replica $leader serves reads (web $(group_field $leader web cpuCores) cores)" \
    test "$(group_field $leader web cpuCores)" = 6
  refused=$("$bin/ebb-manager" set-group web --cpus 6 --manager "127.0.0.1:${port[$leader]}" --plaintext 2>&1)
  check "the restarted replica $leader follows: it refuses a write and names the leader ($refused)" \
    grep -q "the leader is at $(address $follower)" <<<"$refused"
  check "the leader key still names replica $follower" test "$(leader_address)" = "$(address $follower)"
  sleep 2
  check "replica $leader published no allocation round since it restarted" \
    test "$(rounds_of "$leader")" = "$rounds_before"
elif [[ $mode == pause-leader ]]; then
  kill -STOP "${pid[$leader]}"
  stopped_at=$(now_ms)
  wait_for 30 eval '[[ -n $(new_leader) ]]'
  follower=$(new_leader)
  echo "replica $follower leads $(( $(now_ms) - stopped_at )) ms after the leader was stopped"
  check "the leader key names replica $follower" test "$(leader_address)" = "$(address $follower)"
  followers_stay "$follower" "$stopped_at"
  # node-c's stream to the stopped replica stays open; a node that got nothing for its lease
  # ends its call and tries the next replica.
  wait_for 60 eval '[[ $(connected_to $follower) == 3 ]]'
  check "node-c moved while replica $leader was still stopped ($(( $(now_ms) - stopped_at )) ms after): replica $follower allocates for the three nodes" \
    test "$(connected_to $follower)" = 3
  resumed_at=$(now_ms)
  kill -CONT "${pid[$leader]}"
  sleep 2
  check "the resumed replica $leader knows it was deposed" grep -q "no longer the leader" "$work/manager$leader.log"
  # A round carries the time it was published.
  late=$(grep -o '"unixMs":"[0-9]*"' "$work/watch$leader.jsonl" | tr -dc '0-9\n' | awk -v t="$resumed_at" '$1 >= t { n++ } END { print n + 0 }')
  check "the resumed replica $leader published no round (fenced: $late rounds since it was resumed)" test "$late" = 0
  check "the nodes hold allocations" all_allocated
elif [[ $mode == kill-follower ]]; then
  killed_at=$(now_ms)
  kill -9 "${pid[$f1]}"
  # node-a as the leader lists it (one line of `ebb-manager nodes`, up to the next node).
  leader_sees_a() { nodes_of "$leader" | sed 's/"nodeId"/\n"nodeId"/g' | grep '"nodeId":"node-a"'; }
  a_moved() {
    local a
    a=$(leader_sees_a)
    grep -q '"connected":true' <<<"$a" && ! grep -q "\"replica\":\"$(address "$f1")\"" <<<"$a"
  }
  wait_for 60 a_moved
  check "node-a, whose follower was killed, streams again through another replica ($(( $(now_ms) - killed_at )) ms after the kill)" a_moved
  a_round=$("$probe" get "$work/node-a.json" /round)
  a_new_round() { (($("$probe" get "$work/node-a.json" /round) > a_round)); }
  wait_for 30 a_new_round
  check "node-a holds a new round there ($(( $(now_ms) - killed_at )) ms after the kill)" a_new_round
  check "the leader allocates for three connected nodes, none through the killed replica" \
    test "$(connected_to "$leader")/$(nodes_of "$leader" | grep -c "\"replica\":\"$(address "$f1")\"")" = 3/0
  check "node-b and node-c kept their streams (reconnects: b ${reconnects_at[b]} -> $(reconnects b), c ${reconnects_at[c]} -> $(reconnects c))" \
    test "$(reconnects b)/$(reconnects c)" = "${reconnects_at[b]}/${reconnects_at[c]}"
  check "the nodes hold allocations" all_allocated
else
  before_web=$(group_field "$leader" web allocatedCpuCores)
  kill -9 "$etcd_pid"
  down_at=$(now_ms)
  sleep 3
  check "during the outage the nodes keep their allocations" all_allocated
  check "during the outage the leader keeps the last allocation (web $(group_field "$leader" web allocatedCpuCores) of $before_web cores)" \
    test "$(group_field "$leader" web allocatedCpuCores)" = "$before_web"
  start_etcd
  wait_for 60 etcd_ok || fail "etcd did not restart"
  echo "etcd back $(( $(now_ms) - down_at )) ms after it was killed"
  wait_for 30 eval '[[ -n $(leader_address) ]]'
  leader=$(replica_of "$(leader_address)")
  echo "leader after the restart: replica $leader"
  admin set-group web --cpus 4.5 >/dev/null 2>&1 || wait_for 30 admin set-group web --cpus 4.5 >/dev/null 2>&1 ||
    fail "set-group web after the restart"
  web_held() { tail -1 "$work/held.txt" | awk '{ exit !($2 > 4.4 && $2 <= 4.5 + 1e-6) }'; }
  wait_for 30 web_held
  check "allocation resumes: the nodes follow web's new budget of 4.5 cores (held: $(tail -1 "$work/held.txt" | cut -d' ' -f2))" \
    web_held
  check "no group or budget lost: web $(group_field $leader web cpuCores) cores, batch $(group_field $leader batch cpuCores) cores" \
    test "$(group_field $leader web cpuCores)/$(group_field $leader batch cpuCores)" = "4.5/3"
fi

for r in 1 2 3; do
  read -r rounds over max missed < <("$probe" rounds "$work/watch$r.jsonl")
  echo "replica $r: $rounds rounds watched, largest group sum $max"
  check "replica $r: no round above a budget ($over over)" test "$over" = 0
done
# Budgets: web 6 (lowered to 4.5 in restart-etcd: the samples taken while the nodes move to it
# are held to 6), batch 3.
over=$(awk -v t="$steady_at" '$1 >= t && ($2 > 6 + 1e-6 || $3 > 3 + 1e-6) { n++ } END { print n + 0 }' "$work/held.txt")
samples=$(awk -v t="$steady_at" '$1 >= t { n++ } END { print n + 0 }' "$work/held.txt")
check "from the steady state on, the nodes' received budgets never summed above a group's budget ($samples samples, $over over)" test "$over" = 0
echo "$failures failures"
((failures == 0))
