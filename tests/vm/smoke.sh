#!/usr/bin/env bash
# Proves that the VM of scripts/vm-run.sh is what ebb's real-kernel tests need.
# Run on the host: tests/vm/smoke.sh. Three VM runs: the checks (one boot), `false`,
# and a timeout. Prints PASS/FAIL per check and exits non-zero on any failure.
# shellcheck disable=SC2317  # the check helpers are called through check()
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
vmrun=$repo/scripts/vm-run.sh

# ---- inside the VM: each check prints one PASS/FAIL line, then exit 7 -------------------
inside() {
	check() { # check DESCRIPTION COMMAND...
		local what=$1 out
		shift
		if out=$("$@" 2>&1); then
			echo "PASS: $what"
		else
			echo "FAIL: $what${out:+ ($(echo "$out" | tr '\n' ' ' | cut -c1-200))}"
		fi
	}
	has_all() { # has_all FILE WORD...: FILE's words include every WORD
		local f=$1 w
		shift
		for w in "$@"; do
			grep -qw -- "$w" "$f" || { echo "$f lacks $w: $(cat "$f")"; return 1; }
		done
	}
	write_read() { # write_read FILE VALUE [EXPECTED]
		echo "$2" >"$1" || return 1
		[[ $(cat "$1") == "${3:-$2}" ]] || { echo "$1 reads '$(cat "$1")'"; return 1; }
	}
	moved() { # moved CGROUP: a process moved into CGROUP is listed there
		local cg=$1 pid rc=0
		sleep 30 &
		pid=$!
		echo "$pid" >"$cg/cgroup.procs" &&
			grep -qx "$pid" "$cg/cgroup.procs" &&
			grep -qx "0::/${cg#/sys/fs/cgroup/}" "/proc/$pid/cgroup" || rc=1
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		return "$rc"
	}
	no_swap() { [[ $(awk '/^SwapTotal:/ { print $2 }' /proc/meminfo) == 0 ]] && (($(wc -l </proc/swaps) == 1)); }
	fs_type() { [[ $(stat -f -c %T "$1") == "$2" ]] || { echo "$1 is $(stat -f -c %T "$1")"; return 1; }; }

	local root=/sys/fs/cgroup cg=/sys/fs/cgroup/ebb-smoke
	check "EBB_IN_VM=1 inside the VM" test "${EBB_IN_VM:-}" = 1
	check "2 CPUs" test "$(nproc)" = 2
	check "cgroup2 mounted at $root" fs_type $root cgroup2fs
	check "root cgroup.controllers has cpu, memory, io" has_all $root/cgroup.controllers cpu memory io
	check "root subtree_control enables cpu memory io pids cpuset" \
		has_all $root/cgroup.subtree_control cpu memory io pids cpuset
	check "a child cgroup can be created" mkdir $cg
	check "cpu.max written and read back" write_read $cg/cpu.max "50000 100000"
	check "memory.max written and read back" write_read $cg/memory.max 104857600
	check "memory.high written and read back" write_read $cg/memory.high 94371840
	check "cpuset.cpus pins to CPU 0" write_read $cg/cpuset.cpus 0
	check "a process can be moved into the child" moved $cg
	check "the child has cpu.stat, memory.events, cpu.pressure" \
		test -f $cg/cpu.stat -a -f $cg/memory.events -a -f $cg/cpu.pressure
	check "the child cgroup can be removed" rmdir $cg
	check "/sys/kernel/btf/vmlinux exists" test -s /sys/kernel/btf/vmlinux
	check "bpffs mounted at /sys/fs/bpf" fs_type /sys/fs/bpf bpf_fs
	check "tracefs mounted at /sys/kernel/tracing" test -f /sys/kernel/tracing/available_events
	check "bpftool prog list works (BPF usable)" bpftool prog list
	check "kernel.bpf_stats_enabled can be set" write_read /proc/sys/kernel/bpf_stats_enabled 1
	check "no swap" no_swap
	check "/tmp is writable" touch /tmp/ebb-smoke
	# shellcheck disable=SC2016  # expanded by that sh
	check "a file can be written to \$EBB_VM_OUT" sh -c 'echo "written in the VM" >"$EBB_VM_OUT/smoke.txt"'
	check "cwd is the host's cwd" test "$PWD" = "$EBB_SMOKE_CWD"
	echo "to stderr" >&2
	exit 7
}
if [[ ${1:-} == --inside ]]; then
	inside
fi

# ---- on the host ------------------------------------------------------------------------
passed=0
failed=0
pass() { echo "PASS: $*" && passed=$((passed + 1)); }
fail() { echo "FAIL: $*" && failed=$((failed + 1)); }
expect() { # expect DESCRIPTION CONDITION...
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"
cd "$repo"

echo "smoke: checks inside the VM (one boot)"
rc=0
EBB_SMOKE_CWD=$repo "$vmrun" -o "$work/out" -e EBB_SMOKE_CWD -- "$here/smoke.sh" --inside \
	>"$work/stdout" 2>"$work/stderr" || rc=$?
cat "$work/stdout"
inside_pass=$(grep -c '^PASS: ' "$work/stdout" || true)
inside_fail=$(grep -c '^FAIL: ' "$work/stdout" || true)
passed=$((passed + inside_pass))
failed=$((failed + inside_fail))
expect "the checks ran inside the VM" test "$inside_pass" -gt 0
expect "exit status 7 propagated (got $rc)" test "$rc" = 7
expect "stdout and stderr are kept apart" grep -qx 'to stderr' "$work/stderr"
expect "a file written to \$EBB_VM_OUT is visible on the host" \
	grep -qx 'written in the VM' "$work/out/smoke.txt"
if ((rc != 7)) && [[ -s $work/stderr ]]; then
	echo "--- stderr of the VM run:"
	cat "$work/stderr"
fi

echo "smoke: vm-run.sh -- false"
rc=0
"$vmrun" -- false || rc=$?
expect "exit status 1 propagated (got $rc)" test "$rc" = 1

echo "smoke: vm-run.sh -t 5 -- sleep 600"
rc=0
start=$SECONDS
"$vmrun" -t 5 -o "$work/out" -- sleep 600 2>"$work/timeout.err" || rc=$?
took=$((SECONDS - start))
expect "a timeout returns 124 (got $rc, after ${took}s)" test "$rc" = 124
expect "a timeout says so" grep -q 'timed out' "$work/timeout.err"
no_qemu_on() { ! pgrep -f "qemu-system.*path=$1" >/dev/null; }
expect "a timeout leaves no qemu behind" no_qemu_on "$work/out"

echo "smoke: $passed passed, $failed failed"
((failed == 0))
