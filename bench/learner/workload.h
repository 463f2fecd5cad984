#pragma once
// Observations for the cost benchmarks: per container a seeded ring of ticks around its own
// level, with +-10% noise, throttling on 2% of ticks and slowly moving memory, so the
// controllers run their usual paths (learning, headroom, memory, an occasional raise).
#include <cstdint>
#include <vector>

#include "daemon/policy/policy.h"

namespace ebb::bench {

inline constexpr int kRing = 256;

struct Fleet {
  policy::ControllerParams params;
  std::vector<std::vector<policy::Observation>> rings;  // [container][tick % kRing]
};

Fleet make_fleet(int containers, std::uint64_t seed);

}  // namespace ebb::bench
