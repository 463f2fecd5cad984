#pragma once
// Seeded synthetic workloads. Each kind stresses one thing a limit controller must handle;
// "mixed" cycles through all kinds, one per container. Per-container parameters (levels,
// phases, memory size) are drawn from the seed, so containers of one workload differ.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/workload.h"

namespace ebb::sim {

enum class SyntheticKind { steady, diurnal, onoff, spikes, steps, phases, leak, memspike };

const std::vector<std::string>& synthetic_kind_names();  // the kinds, in declaration order
std::optional<SyntheticKind> parse_synthetic_kind(std::string_view name);

struct SyntheticOptions {
  int containers = 16;
  double duration_s = 288;   // one compressed day at the default compression
  double compression = 300;  // a "day" lasts 86400 / compression simulated seconds
  double tick_s = 0.1;
  std::uint64_t seed = 1;
};

// name is a kind from synthetic_kind_names() or "mixed".
Workload synthetic_workload(std::string_view name, const SyntheticOptions& options);

}  // namespace ebb::sim
