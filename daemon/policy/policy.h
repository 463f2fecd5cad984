#pragma once
// The decision contract shared by ebbd, ebb-sim and the learner.
//
// A ContainerController turns one Observation (rates over the last interval, already reduced
// from cgroup snapshots or from the simulator) into a Decision (the limits it wants). Decisions
// are deterministic: the output depends only on the controller's construction parameters, its
// previous inputs and the Observation, never on clocks or I/O, so the simulator, the daemon and
// the tests drive the very same code.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ebb::policy {

enum class PriorityClass { guaranteed, burstable, best_effort };

// Per-container limits the controller must respect whatever it computes.
struct Bounds {
  double cpu_min_cores = 0.05;
  double cpu_max_cores = 0;             // 0: the node's CPU capacity
  std::uint64_t memory_min_bytes = 32ull << 20;
  std::uint64_t memory_max_bytes = 0;   // 0: the node's memory
};

// What the container should achieve; the controller trades slack against it.
struct Objective {
  double throttled_fraction = 0.01;              // of CFS periods, over recent ticks
  std::optional<double> runq_latency_p99_us;     // when probes provide run-queue latency
  double memory_pressure_some_avg10 = 1.0;       // percent
};

struct ControllerParams {
  Bounds bounds;
  Objective objective;
  PriorityClass priority = PriorityClass::burstable;
  double node_cpu_cores = 1;
  std::uint64_t node_memory_bytes = 1ull << 30;
  double tick_s = 0.2;
};

// One interval of one container, as rates. Memory counters of memory.events are deltas.
struct Observation {
  double interval_s = 0;
  bool first = false;                         // no previous snapshot: rates are zero

  double cpu_usage_cores = 0;                 // usage_usec delta / interval
  double cpu_throttled_periods = 0;           // nr_throttled delta / nr_periods delta, 0..1
  double cpu_throttled_s_per_s = 0;           // throttled_usec delta / interval
  std::optional<double> cpu_limit_cores;      // cpu.max now; nullopt is "max"
  double cpu_pressure_some_avg10 = 0;         // percent
  std::optional<double> runq_latency_p99_us;  // from probes, when loaded

  std::uint64_t memory_current_bytes = 0;
  std::uint64_t memory_working_set_bytes = 0; // anon + active_file, the part reclaim would hurt
  std::optional<std::uint64_t> memory_high_bytes;  // nullopt is "max"
  std::optional<std::uint64_t> memory_max_bytes;   // nullopt is "max"
  std::uint64_t memory_high_events = 0;
  std::uint64_t memory_max_events = 0;
  std::uint64_t oom_kill_events = 0;
  double memory_pressure_some_avg10 = 0;      // percent
  double reclaim_stall_s_per_s = 0;           // from probes, else 0

  bool starving = false;                      // an event (probe or PSI trigger) called this decision
};

// The limits a controller wants. nullopt leaves the limit at "max".
struct Limits {
  std::optional<double> cpu_cores;
  std::optional<std::uint64_t> memory_high_bytes;
  std::optional<std::uint64_t> memory_max_bytes;
  bool operator==(const Limits&) const = default;
};

struct Decision {
  Limits limits;
  std::string source;                 // "heuristic", "learner", "fallback", ...
  std::string reason;                 // why, in words, for logs and ebbctl inspect
  std::optional<double> predicted_cpu_cores;  // the learner's forecast, when it has one
};

class ContainerController {
 public:
  virtual ~ContainerController() = default;
  virtual Decision decide(const Observation& observation) = 0;
  // The same decision, written over `out` (every field), so that its strings keep their
  // buffers from call to call: ebb-sim calls it for every container and tick.
  virtual void decide_into(const Observation& observation, Decision& out) { out = decide(observation); }
  virtual std::string name() const = 0;
};

// Sets `s` to `text` unless it holds it already: decide_into() rewrites a Decision's source on
// every call, and a copy of the same few bytes each time is measurable in ebb-sim.
inline void assign_text(std::string& s, std::string_view text) {
  if (s.size() != text.size() || s.compare(0, s.size(), text.data(), text.size()) != 0) s.assign(text);
}

using ControllerFactory = std::function<std::unique_ptr<ContainerController>(const ControllerParams&)>;

// The CPU limit an observation implies: cpu.max, or the effective ceiling when it is "max".
double effective_cpu_limit(const Observation& o, const ControllerParams& p);
double cpu_ceiling(const ControllerParams& p);
std::uint64_t memory_ceiling(const ControllerParams& p);

// A limit that is "max" (nullopt) stays "max" while the decision is the ceiling anyway:
// rewriting it as the node's size would be a write with no effect that also hides the original
// setting.
template <typename T>
std::optional<T> keep_unlimited(const std::optional<T>& current, T wanted, T ceiling) {
  return !current && wanted >= ceiling ? std::nullopt : std::optional<T>(wanted);
}

}  // namespace ebb::policy
