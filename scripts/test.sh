#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs the packages, builds, runs the
# unit tests (ctest), then the integration tests on a real kernel (tests/vm/**, each booting
# the VM of scripts/vm-run.sh). Ends with one line: "N passed, N failed".
#   scripts/test.sh [--unit-only | --vm-only] [--build-dir DIR]
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
build=build
unit=1
vm=1
while (($#)); do
  case $1 in
    --unit-only) vm=0 ;;
    --vm-only) unit=0 ;;
    --build-dir) build=$2; shift ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n== %s ==\n' "$*"; }

step "packages"
bash scripts/deps.sh || { echo "test.sh: installing packages failed"; exit 1; }

step "build ($build)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
cmake --build "$build" -j"$(nproc)" || { echo "test.sh: build failed"; exit 1; }

total_passed=0
total_failed=0
stages=()

if ((unit)); then
  step "unit and in-process tests (ctest)"
  out=$(mktemp)
  ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 300 2>&1 | tee "$out" | grep -vE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed'
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$out" | tail -1)
  if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    f=${BASH_REMATCH[1]}; n=${BASH_REMATCH[2]}
    total_passed=$((total_passed + n - f)); total_failed=$((total_failed + f))
    stages+=("unit tests: $((n - f)) passed, $f failed")
  else
    total_failed=$((total_failed + 1)); stages+=("unit tests: ctest did not report (failed)")
  fi
  rm -f "$out"
fi

if ((vm)); then
  export EBB_BIN=$repo/$build/bin
  mapfile -t vm_tests < <(find tests/vm -name '*.sh' -perm -u+x ! -name lib.sh | sort)
  for t in "${vm_tests[@]}"; do
    step "real kernel: $t"
    out=$(mktemp)
    "$t" "$repo/$build" 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    p=$(grep -cE '^ *PASS' "$out"); f=$(grep -cE '^ *FAIL' "$out")
    if ((status != 0 && f == 0)); then f=1; fi  # died before it could say what failed
    total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
    stages+=("$t: $p passed, $f failed (exit $status)")
    rm -f "$out"
  done
fi

step "summary"
printf '%s\n' "${stages[@]}"
echo "$total_passed passed, $total_failed failed"
((total_failed == 0))
