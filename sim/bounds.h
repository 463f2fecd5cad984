#pragma once
// Helpers shared by the workload builders: declared limits and the burst process.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>

#include "sim/random.h"
#include "sim/workload.h"

namespace ebb::sim {

// The limits an owner declares for a container whose demand peaks at `peak`: twice the
// peak, CPU in half cores and memory in 64 MiB steps, as people round them.
inline double declared_cpu_bound(double peak_cores) { return std::max(0.5, std::ceil(4 * peak_cores) / 2); }
inline std::uint64_t declared_memory_bound(std::uint64_t peak_bytes) {
  constexpr std::uint64_t step = 64ull << 20;
  return std::max<std::uint64_t>(step, (2 * peak_bytes + step - 1) / step * step);
}

// On/off multiplier around 1 at 10 ms resolution (see BurstParams).
class BurstProcess {
 public:
  BurstProcess(const BurstParams& params, std::uint64_t seed);
  // The multiplier for the next dt_s. Inline: it runs for every 10 ms of bursty demand.
  double step(double dt_s = kSubstepS) {
    if (params_.amplitude <= 0) return 1;
    left_s_ -= dt_s;
    if (left_s_ <= 0) {
      on_ = !on_;
      left_s_ = rng_.exponential(on_ ? params_.mean_s : off_mean_s_);
    }
    return on_ ? on_multiplier_ : off_multiplier_;
  }
  // Multiplies each value by step(dt_s) in turn, with the state in registers.
  void scale(std::span<float> values, double dt_s = kSubstepS) {
    if (params_.amplitude <= 0) return;
    double left = left_s_;
    bool on = on_;
    const float on_multiplier = static_cast<float>(on_multiplier_), off_multiplier = static_cast<float>(off_multiplier_);
    for (float& v : values) {
      left -= dt_s;
      if (left <= 0) {
        on = !on;
        left = rng_.exponential(on ? params_.mean_s : off_mean_s_);
      }
      v *= on ? on_multiplier : off_multiplier;
    }
    left_s_ = left;
    on_ = on;
  }

 private:
  BurstParams params_;
  Rng rng_;
  double on_multiplier_ = 1, off_multiplier_ = 1, off_mean_s_ = 1;
  double left_s_ = 0;
  bool on_ = false;
};

}  // namespace ebb::sim
