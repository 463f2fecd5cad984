#!/usr/bin/env bash
# Issue 3's must-show a-d and PSI triggers on a real kernel: the probes_vm_tests cases plus the
# probes' host tests, inside the Debian 6.1 VM. One PASS/FAIL line each and a closing
# "N passed, N failed"; exits non-zero if any fails.
#   tests/vm/probes/run.sh [BUILD_DIR]      (default BUILD_DIR: build)
# Outside the VM it runs itself again through scripts/vm-run.sh.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || exit 1
if [[ -z ${EBB_IN_VM:-} ]]; then
	# One emulation thread for both vCPUs: with qemu's default of one thread per vCPU the guest
	# wedged now and then while a case detached its probes (docs/vm.md, "A guest that hangs").
	EBB_VM_TCG_THREAD=single exec "$repo/scripts/vm-run.sh" -t 900 -- "$repo/tests/vm/probes/run.sh" "$build"
fi

vm_tests=$build/bin/probes_vm_tests
unit_tests=$build/bin/probes_tests
for bin in "$vm_tests" "$unit_tests"; do
	[[ -x $bin ]] || { echo "FAIL: $bin is not built (cmake --build $build --target ${bin##*/})"; exit 1; }
done
log=$(mktemp)
passed=0
failed=0

# check NAME BINARY ARGS...: one line for the result, the figures the test printed, and the
# whole output when it failed. Each case has its own time limit, so that a case that hangs is
# named and the ones after it still run (a CI run once spent the VM's whole 900 s on one).
case_limit_s=180
check() {
	local name=$1 status=0 started=$SECONDS pid hung=0
	shift
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null && ((SECONDS - started < case_limit_s)); do sleep 1; done
	if kill -0 "$pid" 2>/dev/null; then
		hung=1
		echo "FAIL: $name (still running after ${case_limit_s} s; its processes and the kernel's last words:)"
		ps -eo pid,ppid,stat,wchan:28,etime,args | sed 's/^/      ps| /'
		dmesg | tail -n 30 | sed 's/^/      dmesg| /'
		pkill -KILL -P "$pid"
		kill -KILL "$pid"
	fi
	wait "$pid" || status=$?
	if ((status == 0 && !hung)); then
		echo "PASS: $name ($((SECONDS - started)) s)"
		passed=$((passed + 1))
		grep -E '^=> ' "$log" | sed 's/^/      /'
	else
		((hung)) || echo "FAIL: $name (exit $status)"
		sed 's/^/      /' "$log"
		failed=$((failed + 1))
	fi
}

echo "kernel $(uname -r)"
# No process substitution: the VM's /dev has no /dev/fd.
names=$("$vm_tests" --list-test-names-only)
while IFS= read -r name; do
	[[ -n $name ]] && check "$name" "$vm_tests" "$name"
done <<<"$names"
check "probes_tests host:* on the VM kernel" "$unit_tests" "host:*"
rm -f "$log"
echo "$passed passed, $failed failed"
((failed == 0))
