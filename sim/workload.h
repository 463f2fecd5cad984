#pragma once
// What the simulator replays: workloads of containers, each a deterministic source of CPU
// demand at 10 ms resolution and memory demand per tick. Sources come from seeded synthetic
// generators, the documented CSV format or the Google 2011 traces (see docs/evaluation.md).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace ebb::sim {

inline constexpr double kSubstepS = 0.01;  // demand is resolved at 10 ms inside each tick

// One container's demand, generated tick by tick in order (tick 0, 1, 2, ...).
class DemandSource {
 public:
  virtual ~DemandSource() = default;
  // Writes the CPU demand in cores of each 10 ms substep of the next tick into `cpu` and
  // returns the memory the container needs during that tick, in bytes.
  virtual std::uint64_t next_tick(std::span<float> cpu) = 0;
};

struct ContainerSpec {
  std::string name;
  // A fresh source per policy run, so every policy sees identical demand.
  std::function<std::unique_ptr<DemandSource>()> make_source;
  // The limits the container's owner declared: each policy's ceiling and the limits the
  // container starts with, as a runtime would set them before any controller acts.
  double cpu_bound_cores = 1;
  std::uint64_t memory_bound_bytes = 1ull << 30;
};

struct Workload {
  std::string name;
  std::vector<ContainerSpec> containers;
  double duration_s = 0;
  // Trace seconds per simulated second. Baselines whose published parameters are wall-clock
  // windows (VPA's 24 h half-life, Autopilot's hour) divide them by it.
  double compression = 1;
  double node_cpu_cores = 0;             // 0: sized by size_node()
  std::uint64_t node_memory_bytes = 0;   // 0: sized by size_node()
};

// Gives a node sized for the workload where it has none: CPUs for the sum of the containers'
// peaks (half their declared bounds), so that contention appears only when asked for with
// --node-cpus, and memory for the sum of the declared bounds.
void size_node(Workload& w);

// A container's memory and CPU time series from a trace: value i holds from times_s[i] until
// times_s[i + 1] (sample-and-hold, as utilisation samples are means over their step).
struct Series {
  std::vector<double> times_s;  // trace time, increasing
  std::vector<double> cpu_cores;
  std::vector<std::uint64_t> memory_bytes;
};

// Seeded bursts inside each trace step, keeping the step's mean: a share `fraction` of the
// time runs at (1 + amplitude) x the step's level in bursts of mean length `mean_s`, the
// rest correspondingly lower. amplitude 0 is no bursts.
struct BurstParams {
  double amplitude = 0;
  double fraction = 0.1;
  double mean_s = 0.05;
};

// A source replaying `series` compressed by `compression`, with optional bursts.
ContainerSpec series_container(std::string name, Series series, double compression, double tick_s,
                               const BurstParams& bursts, std::uint64_t seed);

}  // namespace ebb::sim
