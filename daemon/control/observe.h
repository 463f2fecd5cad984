#pragma once
// Pure glue between cgroup snapshots and the policy contract: two snapshots (and optional
// probe counters) become an Observation; a wanted Limits becomes the list of file writes that
// differ enough from what the cgroup has now.
#include <optional>
#include <string>
#include <vector>

#include "daemon/cgroup/cgroup.h"
#include "daemon/policy/policy.h"
#include "daemon/probes/probes.h"

namespace ebb::control {

struct ProbeDelta {
  double cpu_cores = 0;
  std::optional<double> runq_latency_p99_us;
  double reclaim_stall_s_per_s = 0;
  std::uint64_t oom_kills = 0;
};

// Counter differences between two probe reads over `interval_s`; percentiles from the
// histogram difference, so they describe this interval only.
ProbeDelta probe_delta(const probes::CgroupCounters& previous, const probes::CgroupCounters& current,
                       double interval_s);

policy::Observation observe(const cgroup::Snapshot* previous, const cgroup::Snapshot& current,
                            const ProbeDelta* probe = nullptr);

policy::Limits current_limits(const cgroup::Snapshot& snapshot);

// How fresh a tick's snapshot of a cgroup must be. Quiet (cpu.stat and memory.current read
// about once a second, see cgroup::Freshness) only when the eBPF counters show that none of its
// tasks ran since the last tick and its cpu.stat did not move between its last two reads either
// (the probes do not see the tasks of descendant cgroups; cpu.stat does). Its memory is not
// watched more closely near a limit: without a task on a CPU it does not grow (a charge is made
// by a running task, reclaim included), and an OOM kill comes as an event. Without the
// counters of both ticks: the cadence's own.
cgroup::Freshness tick_freshness(bool cpu_stat_moved, const probes::CgroupCounters* last_probe,
                                 const probes::CgroupCounters* probe);

// Whether cpu.stat moved between two snapshots that both read it (usage or throttling), or
// nullopt when `current` carries the cpu.stat of `previous`.
std::optional<bool> cpu_stat_moved(const cgroup::Snapshot& previous, const cgroup::Snapshot& current);

struct LimitWrite {
  enum class File { cpu_max, memory_high, memory_max };
  File file;
  cgroup::CpuMax cpu_max;         // for File::cpu_max
  std::uint64_t bytes = 0;        // for memory files
  std::string describe() const;   // "cpu.max=50000 100000"
};

// Writes needed to move `snapshot` to `wanted`, skipping changes below 1% (CPU) or below
// max(1%, 1 MiB) (memory) so that noise does not turn into a write storm. Ordered so that
// memory.max is raised before memory.high follows it, and lowered after.
std::vector<LimitWrite> plan_writes(const cgroup::Snapshot& snapshot, const policy::Limits& wanted);

Status apply(cgroup::LimitWriter& writer, const std::string& cgroup, const LimitWrite& write);

}  // namespace ebb::control
