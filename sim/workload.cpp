#include "sim/workload.h"

#include <algorithm>
#include <cmath>

#include "sim/bounds.h"
#include "sim/random.h"

namespace ebb::sim {

void size_node(Workload& w) {
  double bound_sum = 0;
  std::uint64_t memory_sum = 0;
  for (const auto& c : w.containers) {
    bound_sum += c.cpu_bound_cores;
    memory_sum += c.memory_bound_bytes;
  }
  if (w.node_cpu_cores <= 0) w.node_cpu_cores = std::ceil(bound_sum / 2);
  if (w.node_memory_bytes == 0) w.node_memory_bytes = memory_sum;
}

BurstProcess::BurstProcess(const BurstParams& p, std::uint64_t seed) : params_(p), rng_(seed) {
  const double f = std::clamp(p.fraction, 1e-3, 0.999);
  on_multiplier_ = 1 + p.amplitude;
  off_multiplier_ = std::max(0.0, (1 - f * on_multiplier_) / (1 - f));
  off_mean_s_ = p.mean_s * (1 - f) / f;
  left_s_ = rng_.exponential(off_mean_s_);
}

namespace {

class SeriesSource final : public DemandSource {
 public:
  SeriesSource(std::shared_ptr<const Series> series, double compression, double tick_s, const BurstParams& bursts,
               std::uint64_t seed)
      : series_(std::move(series)), compression_(compression), tick_s_(tick_s), bursts_(bursts, seed) {}

  std::uint64_t next_tick(std::span<float> cpu) override {
    const auto& s = *series_;
    const double trace_t = static_cast<double>(tick_) * tick_s_ * compression_;
    ++tick_;
    while (index_ + 1 < s.times_s.size() && s.times_s[index_ + 1] <= trace_t) ++index_;
    const double level = s.cpu_cores[index_];
    for (float& c : cpu) c = static_cast<float>(level * bursts_.step());
    return s.memory_bytes[index_];
  }

 private:
  std::shared_ptr<const Series> series_;
  double compression_;
  double tick_s_;
  BurstProcess bursts_;
  std::int64_t tick_ = 0;
  std::size_t index_ = 0;
};

}  // namespace

ContainerSpec series_container(std::string name, Series series, double compression, double tick_s,
                               const BurstParams& bursts, std::uint64_t seed) {
  ContainerSpec spec;
  spec.name = std::move(name);
  const double peak = *std::max_element(series.cpu_cores.begin(), series.cpu_cores.end());
  const std::uint64_t memory_peak = *std::max_element(series.memory_bytes.begin(), series.memory_bytes.end());
  const double burst_peak = peak * (1 + std::max(0.0, bursts.amplitude));
  spec.cpu_bound_cores = declared_cpu_bound(burst_peak);
  spec.memory_bound_bytes = declared_memory_bound(memory_peak);
  auto shared = std::make_shared<const Series>(std::move(series));
  spec.make_source = [shared, compression, tick_s, bursts, seed] {
    return std::make_unique<SeriesSource>(shared, compression, tick_s, bursts, seed);
  };
  return spec;
}

}  // namespace ebb::sim
