#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: installs the packages, builds, then shows ebbd
# managing real cgroups. Three bundled workloads (a bursty CPU service, an idle service, a
# service whose memory grows) run ~15 s under hand-set static limits, then ~15 s under ebbd,
# and a table compares CPU slack, throttling, memory headroom and OOM kills.
# It runs on this host if its cgroup v2 hierarchy has the cpu and memory controllers and we are
# root; otherwise inside the real-kernel VM of scripts/vm-run.sh.
#   scripts/demo.sh [--seconds N]     (N per phase, default 15)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
seconds=15
while (($#)); do
  case $1 in
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

echo "== packages and build =="
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target ebbd ebb-workload ebb-meter

controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || true)
if [[ $(id -u) -eq 0 && $controllers == *cpu* && $controllers == *memory* ]]; then
  echo "== running on this host's cgroup v2 hierarchy =="
  exec bash scripts/demo/scenario.sh "$seconds"
fi
echo "== this host has no cgroup v2 cpu+memory controllers here: running in the VM (Debian's 6.1 kernel) =="
exec scripts/vm-run.sh -t 900 -- bash scripts/demo/scenario.sh "$seconds"
