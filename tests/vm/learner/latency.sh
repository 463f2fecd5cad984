#!/usr/bin/env bash
# Issue 5, must-show (real kernel): a CPU-bound request service with bursty random arrivals
# (ebb-workload serve: quiet phases, bursts 8x as busy, each request 20 ms of CPU,
# latency measured by the service from each request's scheduled arrival to the end of its work)
# runs three times with the same seed, so the same requests arrive at the same moments:
#   1. under ebbd with the learner (tick 200 ms, no probes: under emulation their events add
#      decisions and overhead, and the comparison is of the learner, not of event reactions);
#   2. under a static cpu.max equal to the learner's measured average allocation in run 1;
#   3. under a static cpu.max at the highest limit the learner set (what a static limit must
#      reserve to meet bursts as the learner did), for the slack that costs a static limit.
# ebbd stays up (on the idle first cgroup) during runs 2 and 3, so every run shares the VM with it.
# Allocation, usage and slack are sampled by ebb-meter (every 0.2 s, while requests arrive).
# Prints the table of docs/evaluation.md. Checks that every request was served, that the static
# run had the learner's average allocation and that the learner (not only its cold-start
# fallback) decided. The latency comparison is printed, not checked: in the software-emulated
# VM on a loaded host the same requests were measured at 0.5 and 1.2 cores of usage in two runs,
# and the learner's limit sat at the VM's 2 CPUs, so the order of the two p99s is noise there
# (docs/evaluation.md, "Real kernel").
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

seconds=${EBB_LATENCY_SECONDS:-40}
# Under software emulation on a loaded host every wake-up and syscall is charged several ms of
# guest CPU time, so the service uses about twice its nominal demand: keep the nominal bursts
# well inside the VM's 2 CPUs, and requests long (20 ms) so that overhead stays second.
quiet_cores=0.1
burst_cores=0.7
work=/tmp/latency
mkdir -p "$work"
slice_setup
serve=("$bin/ebb-workload" serve --quiet-cores $quiet_cores --burst-cores $burst_cores --quiet-s 8 --burst-s 3
       --work-ms 20 --workers 4 --seconds "$seconds" --drain 30 --seed 7)

# run_service NAME: runs the service in cgroup svc-NAME (cpu.max already set up) with ebb-meter
# beside it; leaves $work/NAME.out (the service's summary line), NAME.status (its exit status)
# and NAME.meter.
run_service() {
  local name=$1 cg=svc-$1
  run_in "$cg" timeout -k 5 $((seconds + 90)) "${serve[@]}" --latency-log "$work/$name.latency" >"$work/$name.out"
  local service=$!
  "$bin/ebb-meter" --interval 0.2 --seconds "$seconds" "ebb.slice/$cg" >"$work/$name.meter" 2>&1
  wait "$service"
  echo $? >"$work/$name.status"
}

# 1. the learner.
new_cgroup svc-learner
cat >"$work/ebbd.toml" <<TOML
[daemon]
tick = "200ms"
policy = "learner"
probes = false
decision_log = "$work/decisions.jsonl"
[select]
patterns = ["ebb.slice/svc-learner"]
TOML
log=$work/ebbd.log
"$bin/ebbd" --config "$work/ebbd.toml" --state-dir "$work/state" >"$log" 2>&1 &
ebbd=$!
wait_until 60 grep -q "adopted" "$log" || fail "ebbd adopted the service's cgroup (log: $(tail -5 "$log"))"
run_service learner
# ebbd keeps running (on the now idle svc-learner) through the static runs: under emulation its
# own CPU use is a noticeable share of the VM's 2 CPUs, and each run should compete with it.

# meter column 2 is the average cpu limit, 3 the average usage, 4 the slack.
learner_limit=$(awk '{ print $2 }' "$work/learner.meter")
[[ $learner_limit =~ ^[0-9.]+$ ]] || { fail "ebb-meter measured the learner's run: $(cat "$work/learner.meter")"; finish; exit; }

# 2. static at the learner's average allocation; 3. static at the highest limit it set (the
# decision log's cpu_limit_cores, the first number after "cgroup"; null is "max").
static_same_quota=$(awk -v c="$learner_limit" 'BEGIN { printf "%d", c * 100000 }')
learner_peak=$(sed -n 's/^{"applied":true,"cgroup":"[^"]*","cpu_limit_cores":\([0-9.e+-]*\),.*/\1/p' \
  "$work/decisions.jsonl" | sort -g | tail -1)
static_peak_quota=$(awk -v c="${learner_peak:-2}" 'BEGIN { printf "%d", c * 100000 }')
new_cgroup svc-static; echo "$static_same_quota 100000" >"$CG/ebb.slice/svc-static/cpu.max"
new_cgroup svc-peak; echo "$static_peak_quota 100000" >"$CG/ebb.slice/svc-peak/cpu.max"
run_service static
run_service peak
kill -TERM "$ebbd"; wait "$ebbd"

[[ -n ${EBB_VM_OUT:-} ]] && cp "$work"/*.out "$work"/*.meter "$work"/*.latency "$work"/decisions.jsonl "$EBB_VM_OUT/" 2>/dev/null
summary() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$work/$1.out"; }
meter() { awk -v c="$2" '{ print $c }' "$work/$1.meter"; }
echo "bursty request service, $seconds s of arrivals (nominal demand: quiet ${quiet_cores} cores, bursts ${burst_cores} cores; 20 ms requests), same seed:"
printf '| %-42s | %8s | %8s | %8s | %10s | %9s | %10s |\n' run requests "p50 ms" "p99 ms" "cpu limit" "cpu used" "cpu slack"
for run in learner static peak; do
  case $run in
    learner) what="ebbd, learner (tick 200 ms)" ;;
    static) what="static cpu.max = learner's average" ;;
    peak) what="static cpu.max = learner's highest ($learner_peak)" ;;
  esac
  printf '| %-42s | %8s | %8s | %8s | %10s | %9s | %10s |\n' "$what" "$(summary $run requests)" "$(summary $run p50_ms)" \
    "$(summary $run p99_ms)" "$(meter $run 2)" "$(meter $run 3)" "$(meter $run 4)"
done

for run in learner static; do
  check "$run: the service ran and served every request ($(cat "$work/$run.out" 2>/dev/null))" \
    test "$(summary $run unserved)" = 0 -a "$(cat "$work/$run.status")" = 0
done
static_limit=$(meter static 2)
check "the static run's average allocation ($static_limit) is the learner's ($learner_limit) within 5%" \
  awk -v s="$static_limit" -v l="$learner_limit" 'BEGIN { exit !(s >= 0.95 * l && s <= 1.05 * l) }'
check "the learner decided (not only its cold-start fallback): $(grep -c '"source":"learner"' "$work/decisions.jsonl") decisions" \
  grep -q '"source":"learner"' "$work/decisions.jsonl"
echo "p99 at the same average allocation: learner $(summary learner p99_ms) ms, static $(summary static p99_ms) ms (not checked, see above)"
finish
