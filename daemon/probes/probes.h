#pragma once
// eBPF probes: per-cgroup aggregates read each tick, and discrete events from a ring buffer
// whose fd the daemon's event loop waits on. Only cgroups passed to track() are measured.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/common/error.h"

namespace ebb::probes {

inline constexpr int kLatencyBuckets = 32;  // log2 buckets of nanoseconds

struct LatencyHistogram {
  std::array<std::uint64_t, kLatencyBuckets> buckets{};  // bucket i: [2^i, 2^(i+1)) ns
  std::uint64_t count = 0;
  std::uint64_t sum_ns = 0;
  double percentile_ns(double q) const;  // upper bound of the bucket holding quantile q
  // The samples added since `earlier` (a read of the same cgroup); a count that went backwards
  // (the cgroup was tracked anew) gives zero.
  LatencyHistogram since(const LatencyHistogram& earlier) const;
};

// Cumulative counters per cgroup since track(); the caller computes deltas between reads.
struct CgroupCounters {
  std::uint64_t cpu_ns = 0;
  LatencyHistogram runq_latency;
  std::uint64_t involuntary_switches = 0;
  std::uint64_t reclaim_stall_ns = 0;
  std::uint64_t oom_kills = 0;
  std::uint64_t throttle_episodes = 0;
};

struct Event {
  enum class Kind { oom_kill, runq_latency, reclaim_stall, throttled };
  Kind kind;
  std::uint64_t cgroup_id = 0;
  std::uint64_t value_ns = 0;       // latency or stall length; 0 for OOM kills and throttling
  std::uint64_t timestamp_ns = 0;   // CLOCK_MONOTONIC (bpf_ktime_get_ns)
};
const char* to_string(Event::Kind kind);

struct Options {
  std::uint64_t runq_event_threshold_ns = 5'000'000;    // a wait above this is an event
  // Reclaim stall of a cgroup above this within stall_window_ns (one pass or the sum of many)
  // is an event.
  std::uint64_t stall_event_threshold_ns = 5'000'000;
  std::uint64_t stall_window_ns = 1'000'000'000;
  std::uint64_t event_interval_ns = 50'000'000;         // per cgroup and kind, in the kernel
};

// Which probes are live; shown in logs, GetNode and `ebbd probe`.
struct ProbeStatus {
  std::string name;      // e.g. "sched_switch", "oom_kill", "throttle_cfs_rq"
  bool attached = false;
  std::string detail;    // why not, when not
};

// One line for logs and `ebbd probe`: which probes are active, and why the others are not.
std::string describe(const std::vector<ProbeStatus>& status);

class ProbeSource {
 public:
  virtual ~ProbeSource() = default;
  virtual std::vector<ProbeStatus> status() const = 0;
  virtual Status track(std::uint64_t cgroup_id) = 0;
  virtual Status untrack(std::uint64_t cgroup_id) = 0;
  virtual Result<std::unordered_map<std::uint64_t, CgroupCounters>> read() = 0;
  virtual int event_fd() const = 0;  // readable when events are pending; -1 if none
  virtual void consume(const std::function<void(const Event&)>& on_event) = 0;
};

// Loads and attaches what this kernel supports. Fails (with the reason) only when nothing at
// all can be loaded: no BPF, no BTF, no privileges; the daemon then runs on cgroupfs and PSI.
Result<std::unique_ptr<ProbeSource>> open_bpf_probes(const Options& options);

}  // namespace ebb::probes
