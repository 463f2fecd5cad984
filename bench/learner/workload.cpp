#include "bench/learner/workload.h"

#include <random>

namespace ebb::bench {

Fleet make_fleet(int containers, std::uint64_t seed) {
  Fleet f;
  f.params.node_cpu_cores = 64;
  f.params.node_memory_bytes = 256ull << 30;
  f.params.tick_s = 0.1;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  f.rings.resize(static_cast<std::size_t>(containers));
  for (auto& ring : f.rings) {
    const double level = 0.2 + 4 * u(rng);
    const double memory = (0.25 + 2 * u(rng)) * (1ull << 30);
    ring.resize(kRing);
    for (int t = 0; t < kRing; ++t) {
      auto& o = ring[static_cast<std::size_t>(t)];
      o.interval_s = 0.1;
      o.cpu_limit_cores = level * 1.3;
      o.cpu_usage_cores = level * (0.9 + 0.2 * u(rng));
      if (u(rng) < 0.02) {
        o.cpu_throttled_periods = 1;
        o.cpu_throttled_s_per_s = 0.3 * u(rng);
      }
      o.memory_current_bytes = o.memory_working_set_bytes =
          static_cast<std::uint64_t>(memory * (1 + 0.1 * std::sin(t * 0.05)));
      o.memory_high_bytes = static_cast<std::uint64_t>(memory * 1.3);
      o.memory_max_bytes = static_cast<std::uint64_t>(memory * 2);
    }
  }
  return f;
}

}  // namespace ebb::bench
