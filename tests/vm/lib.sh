# Shared helpers of the VM integration tests (sourced). Each test script re-executes itself in
# the VM through scripts/vm-run.sh when started on the host, and prints one PASS/FAIL line per
# check and a closing "N passed, N failed" line.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${EBB_BIN:-$repo/build/bin}
CG=/sys/fs/cgroup
passed=0
failed=0

in_vm_or_reexec() {  # usage: in_vm_or_reexec "$0" "$@"
  if [[ -z ${EBB_IN_VM:-} ]]; then
    EBB_BIN=$bin exec "$repo/scripts/vm-run.sh" -t "${EBB_VM_TIMEOUT:-900}" -e EBB_BIN -- "$@"
  fi
  [[ -x $bin/ebbd ]] || { echo "FAIL: $bin/ebbd is not built"; exit 1; }
}

pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  # Keep the daemon's log for a post-mortem when the host asked for results (EBB_VM_OUT).
  [[ -n ${EBB_VM_OUT:-} && -n ${log:-} && -f ${log:-} ]] && cp "$log" "$EBB_VM_OUT/$(basename "$0" .sh).log"
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

slice_setup() {
  mkdir -p "$CG/ebb.slice"
  echo "+cpu +memory +io" >"$CG/ebb.slice/cgroup.subtree_control"
}
new_cgroup() { mkdir -p "$CG/ebb.slice/$1"; }
# run_in CGROUP COMMAND...: starts COMMAND in the cgroup, in the background; $! is its pid.
run_in() {
  local cg=$1; shift
  sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG/ebb.slice/$cg" "$@" &
}
field() { awk -v k="$2" '$1 == k { print $2 }' "$CG/ebb.slice/$1/$3"; }
quota() { awk '{ print $1 }' "$CG/ebb.slice/$1/cpu.max"; }
now_ms() { date +%s%3N; }
# Milliseconds since the epoch of the first ebbd log line matching a regex ("" if none).
log_ms() {
  local stamp
  stamp=$(grep -m1 -E "$2" "$1" | cut -d' ' -f1) || true
  [[ -n $stamp ]] && date -d "$stamp" +%s%3N
}
# wait_until SECONDS command...: polls every 100 ms; returns 0 as soon as the command succeeds.
wait_until() {
  local deadline=$(( $(now_ms) + $1 * 1000 )); shift
  until "$@"; do
    (( $(now_ms) < deadline )) || return 1
    sleep 0.1
  done
}
# stop_ebbd PID [LOG]: SIGTERM, then up to 60 s for ebbd to exit; returns its exit status. A
# daemon that does not stop is a bug worth a post-mortem, so before SIGKILL (status 124) this
# prints each thread's kernel wait channel and the log's tail.
stop_ebbd() {
  local pid=$1 log=${2:-} task
  kill -TERM "$pid" 2>/dev/null
  if ! wait_until 60 exited "$pid"; then
    echo "ebbd ($pid) still running 60 s after SIGTERM; its threads (name, wait channel):" >&2
    for task in /proc/"$pid"/task/*; do
      echo "  $(cat "$task/comm" 2>/dev/null) $(cat "$task/wchan" 2>/dev/null)" >&2
    done
    [[ -n $log && -f $log ]] && tail -n 20 "$log" | sed 's/^/  log: /' >&2
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 124
  fi
  wait "$pid"
}
# exited PID: the process is gone or a zombie (a child that exited but is not reaped yet still
# answers kill -0).
exited() { [[ ! -e /proc/$1/stat || $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) == Z ]]; }
stop_all_in() {  # kills every process of a cgroup
  local pids
  pids=$(cat "$CG/ebb.slice/$1/cgroup.procs" 2>/dev/null) || return 0
  [[ -z $pids ]] || kill -9 $pids 2>/dev/null || true
}
