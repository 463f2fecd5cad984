#!/usr/bin/env bash
# ebbd as a process, on a fake cgroup tree: flags, config errors, systemd notifications
# (READY, WATCHDOG through NOTIFY_SOCKET, received by socat), --once output, SIGHUP reload
# (an invalid config is rejected and the old one stays), SIGTERM restoring originals.
#   tests/daemon/lifecycle.sh BIN_DIR
set -uo pipefail
bin=$1
work=$(mktemp -d)
trap 'kill $ebbd $listener 2>/dev/null; rm -rf "$work"' EXIT
passed=0 failed=0
check() {
  local what=$1; shift
  if "$@"; then echo "PASS: $what"; passed=$((passed + 1)); else echo "FAIL: $what"; failed=$((failed + 1)); fi
}
wait_for() {  # wait_for SECONDS command...
  local n=$(($1 * 10)); shift
  until "$@"; do ((n-- > 0)) || return 1; sleep 0.1; done
}

root=$work/cg
mkdir -p "$root/ebb.slice/web" "$root/other.slice/db"
echo "cpu memory" >"$root/ebb.slice/cgroup.subtree_control"
echo "cpu memory" >"$root/other.slice/cgroup.subtree_control"
for d in "$root/ebb.slice/web" "$root/other.slice/db"; do
  printf 'usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n' >"$d/cpu.stat"
  echo "20000 100000" >"$d/cpu.max"
  echo max >"$d/memory.high"; echo $((256 << 20)) >"$d/memory.max"
  echo $((50 << 20)) >"$d/memory.current"
done

check "--version prints the version" sh -c "'$bin/ebbd' --version | grep -q '^ebbd [0-9]'"
check "--help lists the flags" sh -c "'$bin/ebbd' --help | grep -q -- '--dry-run'"
check "an unknown flag is an error" sh -c "! '$bin/ebbd' --frobnicate 2>/dev/null"
printf '[daemon]\ntick = "1ms"\n' >"$work/bad.toml"
check "an invalid config exits 2 naming file and line" \
  sh -c "'$bin/ebbd' --config '$work/bad.toml' 2>&1 | grep -q 'bad.toml:2: daemon.tick'"
"$bin/ebbd" --config "$work/bad.toml" >/dev/null 2>&1; check "... with status 2" test $? -eq 2
check "a missing cgroup root is a clear error" \
  sh -c "'$bin/ebbd' --cgroup-root '$work/nope' 2>&1 | grep -q 'is not a directory'"

once=$("$bin/ebbd" --once --dry-run --cgroup-root "$root" --select 'ebb.slice/*' --state-dir "$work/once-state" 2>/dev/null)
check "--once prints one JSON line per managed cgroup" test "$(grep -c '"cgroup":"ebb.slice/web"' <<<"$once")" -eq 1
check "--once --dry-run writes nothing" grep -qx "20000 100000" "$root/ebb.slice/web/cpu.max"

# The daemon under a fake systemd: a datagram socket for sd_notify.
notify=$work/notify.sock
socat -u UNIX-RECV:"$notify" - >"$work/notifications" 2>/dev/null &
listener=$!
wait_for 5 test -S "$notify"
printf '[select]\npatterns = ["ebb.slice/*"]\n' >"$work/ebbd.toml"
NOTIFY_SOCKET=$notify WATCHDOG_USEC=2000000 "$bin/ebbd" --config "$work/ebbd.toml" --cgroup-root "$root" \
  --state-dir "$work/state" --tick 100ms >"$work/log" 2>&1 &
ebbd=$!
check "READY=1 sent to systemd after the first tick" wait_for 10 grep -q "READY=1" "$work/notifications"
check "WATCHDOG=1 sent while running" wait_for 5 grep -q "WATCHDOG=1" "$work/notifications"
check "adopted the selected cgroup, not the other" sh -c "grep -q 'adopted web' '$work/log' && ! grep -q 'adopted db' '$work/log'"

printf '[select]\npatterns = ["ebb.slice/[oops"]\n' >"$work/ebbd.toml"
kill -HUP $ebbd
check "SIGHUP with an invalid config: rejected, old one kept" wait_for 5 grep -q "configuration rejected" "$work/log"
check "... and ebbd keeps running" kill -0 $ebbd
printf '[select]\npatterns = ["ebb.slice/*", "other.slice/*"]\n' >"$work/ebbd.toml"
kill -HUP $ebbd
check "SIGHUP with a valid config: reloaded" wait_for 5 grep -q "configuration reloaded" "$work/log"
check "... and the new selection is adopted" wait_for 5 grep -q "adopted db" "$work/log"

echo "5000 100000" >"$root/other.slice/db/cpu.max"  # as if ebbd had changed it
kill -TERM $ebbd
wait $ebbd; status=$?
check "SIGTERM exits 0 (got $status)" test $status -eq 0
check "SIGTERM restored the original cpu.max" grep -qx "20000 100000" "$root/other.slice/db/cpu.max"
check "STOPPING=1 sent" grep -q "STOPPING=1" "$work/notifications"

echo "$passed passed, $failed failed"
((failed == 0))
