# Shared by the packaging tests (sourced after $work is set): one PASS or FAIL line per check,
# with the failing command's last output lines, and the counts for the closing line.
passed=0
failed=0
check() {  # check NAME COMMAND...
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then
    echo "PASS: $name"; passed=$((passed + 1))
  else
    echo "FAIL: $name"; sed 's/^/  /' "$work/out" | tail -20; failed=$((failed + 1))
  fi
}
