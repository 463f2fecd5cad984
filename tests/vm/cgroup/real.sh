#!/usr/bin/env bash
# The cgroup and discovery tests against the real kernel's cgroupfs (their [real] cases run only
# when EBB_REAL_CGROUP_ROOT is set, which this script does inside the VM).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
in_vm_or_reexec "$0" "$@"

for suite in cgroup_tests discovery_tests; do
  out=$(EBB_REAL_CGROUP_ROOT=$CG "$bin/$suite" 2>&1)
  status=$?
  summary=$(tail -n 2 <<<"$out" | tr -s '\n' ' ')
  if ((status == 0)) && ! grep -q "WARN" <<<"$out"; then
    pass "$suite on the real cgroupfs: $summary"
  else
    echo "$out" | tail -40
    fail "$suite on the real cgroupfs (exit $status): $summary"
  fi
done
finish
