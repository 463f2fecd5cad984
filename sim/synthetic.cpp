#include "sim/synthetic.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "sim/bounds.h"
#include "sim/random.h"

namespace ebb::sim {

namespace {

constexpr double kNoise = 0.1;           // +-10% white noise on every 10 ms of CPU demand
constexpr double kMemoryNoise = 0.01;    // +-1% per tick
constexpr double kDiurnalSwing = 0.6;    // level x (1 +- 0.6) over a day
constexpr double kStepMeanS = 20;        // steps: a new level every 20 s on average
constexpr double kPhaseMeanS = 40;       // phases: a new phase every 40 s on average
constexpr double kLeakGrowth = 2;        // leak: memory triples over the run

// Bursts of each kind, as (amplitude, time share, mean length): on/off bursts at 3x the level
// 20% of the time; rare 5x spikes of 0.3 s about once a minute; memory doubling for 3 s about
// once a minute.
constexpr BurstParams kOnOff{2.0, 0.2, 0.5};
constexpr BurstParams kSpikes{4.0, 0.005, 0.3};
constexpr BurstParams kMemorySpikes{1.0, 0.05, 3.0};

const std::vector<std::string> kNames = {"steady", "diurnal", "onoff", "spikes", "steps", "phases", "leak", "memspike"};

// White noise in [-1, 1): a fixed table read at a per-container offset. Drawing fresh numbers
// for every 10 ms of every container dominated the run time; the table repeats after 655 s of
// a container's demand, far beyond what any controller remembers of noise.
constexpr std::uint32_t kNoiseMask = (1u << 16) - 1;
const std::vector<float>& noise_table() {
  static const std::vector<float> table = [] {
    Rng rng(0x6e6f697365);
    std::vector<float> t(kNoiseMask + 1);
    for (float& v : t) v = static_cast<float>(2 * rng.uniform() - 1);
    return t;
  }();
  return table;
}

// out[j] = base + amplitude x noise[j]: contiguous, so the compiler vectorises it; N > 0 is
// the length known at compile time (10 substeps at the default tick).
template <std::size_t N>
void add_noise(float* __restrict out, const float* __restrict noise, float base, float amplitude, std::size_t n) {
  if constexpr (N > 0) n = N;
  for (std::size_t j = 0; j < n; ++j) out[j] = base + amplitude * noise[j];
}

struct Shape {
  double level_cores;
  double memory_bytes;
  double phase;  // diurnal phase, radians
};

// The peak of each kind relative to its level (noise included), for the declared bounds.
double peak_factor(SyntheticKind kind) {
  switch (kind) {
    case SyntheticKind::diurnal: return (1 + kDiurnalSwing) * (1 + kNoise);
    case SyntheticKind::onoff:
    case SyntheticKind::phases: return (1 + kOnOff.amplitude) * (1 + kNoise);
    case SyntheticKind::spikes: return (1 + kSpikes.amplitude) * (1 + kNoise);
    case SyntheticKind::steps: return 2.0 * (1 + kNoise);
    default: return 1 + kNoise;
  }
}

double memory_peak_factor(SyntheticKind kind) {
  switch (kind) {
    case SyntheticKind::leak: return (1 + kLeakGrowth) * (1 + kMemoryNoise);
    case SyntheticKind::memspike: return (1 + kMemorySpikes.amplitude) * (1 + kMemoryNoise);
    default: return 1 + kMemoryNoise;
  }
}

class SyntheticSource final : public DemandSource {
 public:
  SyntheticSource(SyntheticKind kind, Shape shape, const SyntheticOptions& o, std::uint64_t seed)
      : kind_(kind),
        shape_(shape),
        day_s_(86400 / o.compression),
        duration_s_(o.duration_s),
        tick_s_(o.tick_s),
        rng_(seed),
        bursts_(kind == SyntheticKind::spikes ? kSpikes : kOnOff, mix64(seed + 1)),
        memory_spikes_(kMemorySpikes, mix64(seed + 2)),
        noise_(noise_table().data()),
        noise_at_(static_cast<std::uint32_t>(mix64(seed + 3))) {}

  std::uint64_t next_tick(std::span<float> cpu) override {
    const double t = static_cast<double>(tick_++) * tick_s_;
    const double level = level_at(t);
    const float base = static_cast<float>(level), amplitude = static_cast<float>(level * kNoise);
    const std::uint32_t at = noise_at_ & kNoiseMask;
    noise_at_ += static_cast<std::uint32_t>(cpu.size());
    if (at + cpu.size() > kNoiseMask + 1) {
      for (std::size_t j = 0; j < cpu.size(); ++j) cpu[j] = base + amplitude * noise_[(at + j) & kNoiseMask];
    } else if (cpu.size() == 10) {
      add_noise<10>(cpu.data(), noise_ + at, base, amplitude, cpu.size());
    } else {
      add_noise<0>(cpu.data(), noise_ + at, base, amplitude, cpu.size());
    }
    if (bursty()) bursts_.scale(cpu);
    double memory = shape_.memory_bytes * (1 + kMemoryNoise * (2 * rng_.uniform() - 1));
    if (kind_ == SyntheticKind::leak) memory *= 1 + kLeakGrowth * t / duration_s_;
    if (kind_ == SyntheticKind::memspike) memory *= memory_spikes_.step(tick_s_);
    return static_cast<std::uint64_t>(memory);
  }

 private:
  bool bursty() const {
    return kind_ == SyntheticKind::onoff || kind_ == SyntheticKind::spikes ||
           (kind_ == SyntheticKind::phases && phase_b_);
  }

  double level_at(double t) {
    switch (kind_) {
      case SyntheticKind::diurnal:
        return shape_.level_cores * (1 + kDiurnalSwing * std::sin(2 * std::numbers::pi * t / day_s_ + shape_.phase));
      case SyntheticKind::steps:
        if (t >= next_change_s_) {
          next_change_s_ = t + rng_.exponential(kStepMeanS);
          step_level_ = shape_.level_cores * rng_.uniform(0.25, 2.0);
        }
        return step_level_;
      case SyntheticKind::phases:
        // Phase A: quiet at half the level; phase B: on/off bursts around the level.
        if (t >= next_change_s_) {
          next_change_s_ = t + rng_.exponential(kPhaseMeanS);
          phase_b_ = !phase_b_;
        }
        return phase_b_ ? shape_.level_cores : 0.5 * shape_.level_cores;
      default:
        return shape_.level_cores;
    }
  }

  SyntheticKind kind_;
  Shape shape_;
  double day_s_, duration_s_, tick_s_;
  Rng rng_;
  BurstProcess bursts_, memory_spikes_;
  const float* noise_;
  std::uint32_t noise_at_;
  std::int64_t tick_ = 0;
  double next_change_s_ = 0, step_level_ = 0;
  bool phase_b_ = true;  // flipped to A at t = 0
};

}  // namespace

const std::vector<std::string>& synthetic_kind_names() { return kNames; }

std::optional<SyntheticKind> parse_synthetic_kind(std::string_view name) {
  for (std::size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<SyntheticKind>(i);
  return std::nullopt;
}

Workload synthetic_workload(std::string_view name, const SyntheticOptions& o) {
  Workload w;
  w.name = std::string(name);
  w.duration_s = o.duration_s;
  w.compression = o.compression;
  const auto single = parse_synthetic_kind(name);
  const std::uint64_t workload_seed = mix64(o.seed ^ hash_name(name));
  for (int i = 0; i < o.containers; ++i) {
    const auto kind = single ? *single : static_cast<SyntheticKind>(i % kNames.size());
    const std::uint64_t seed = mix64(workload_seed + static_cast<std::uint64_t>(i));
    Rng draw(seed);
    const Shape shape{draw.uniform(0.2, 2.0), draw.uniform(256.0, 2048.0) * (1 << 20),
                      draw.uniform(0, 2 * std::numbers::pi)};
    ContainerSpec spec;
    spec.name = kNames[static_cast<std::size_t>(kind)] + "-" + std::to_string(i);
    spec.cpu_bound_cores = declared_cpu_bound(shape.level_cores * peak_factor(kind));
    spec.memory_bound_bytes =
        declared_memory_bound(static_cast<std::uint64_t>(shape.memory_bytes * memory_peak_factor(kind)));
    spec.make_source = [kind, shape, o, seed] { return std::make_unique<SyntheticSource>(kind, shape, o, mix64(seed)); };
    w.containers.push_back(std::move(spec));
  }
  size_node(w);
  return w;
}

}  // namespace ebb::sim
