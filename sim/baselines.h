#pragma once
// The policies ebb is compared with, each a ContainerController built from its published
// description (docs/baselines.md gives the sources, the rules and every parameter).
#include <cstdint>
#include <deque>
#include <vector>

#include "daemon/policy/policy.h"
#include "sim/decaying_histogram.h"
#include "sim/engine.h"

namespace ebb::sim {

// Static limits from the whole trace, known up front: what a careful user would set.
struct StaticParams {
  double cpu_percentile = 99;  // of the per-tick mean demand
  double cpu_margin = 0.15;
  double memory_margin = 0.15;  // over the peak: a percentile of memory would OOM-kill
};

class StaticController final : public policy::ContainerController {
 public:
  StaticController(const policy::ControllerParams& params, const TraceSummary& summary, const StaticParams& p = {});
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "static"; }

 private:
  policy::Limits limits_;
};

// The clairvoyant oracles at tick granularity. "oracle" (the definition): cpu.max is
// the peak 10 ms demand of the tick it will govern. "oracle-cfs": cpu.max is the least limit
// under which CFS serves that tick without throttling (NextTick::unthrottled_cores), never
// above the former, because CFS lets a container spend its quota at any pace within a period.
// Both set memory.max to the memory that tick needs.
class OracleController final : public policy::ContainerController {
 public:
  enum class Cpu { peak, cfs };
  OracleController(const NextTick& next, Cpu cpu) : next_(next), cpu_(cpu) {}
  policy::Decision decide(const policy::Observation& observation) override;
  void decide_into(const policy::Observation& observation, policy::Decision& out) override;
  std::string name() const override { return cpu_ == Cpu::peak ? "oracle" : "oracle-cfs"; }

 private:
  const NextTick& next_;
  Cpu cpu_;
};

// Kubernetes VPA's recommender: decaying histograms of CPU usage samples and of memory peaks,
// target = p90 x (1 + margin), applied every interval; an OOM kill adds a memory sample of
// max(limit + 100 MB, 1.2 x limit). Wall-clock parameters are divided by the compression.
struct VpaParams {
  double half_life_s = 24 * 3600;
  double interval_s = 60;
  double memory_window_s = 24 * 3600;  // memory samples are peaks per window
  double target_percentile = 90;
  double margin = 0.15;
  std::uint64_t oom_min_bump_bytes = 100ull << 20;
  double oom_bump_ratio = 1.2;
  double cpu_first_bucket = 0.01;       // cores
  double memory_first_bucket = 1e7;     // bytes
  double bucket_ratio = 1.05;
};

class VpaController final : public policy::ContainerController {
 public:
  VpaController(const policy::ControllerParams& params, double compression, const VpaParams& p = {});
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "vpa"; }

 private:
  policy::ControllerParams params_;
  VpaParams p_;
  DecayingHistogram cpu_, memory_;
  double now_s_ = 0, interval_usage_ = 0, interval_s_ = 0, window_start_s_ = 0;
  double window_peak_ = 0;  // memory peak of the open window, not yet in memory_
  policy::Limits limits_;
};

// Autopilot's moving-window recommender (Rzadca et al., EuroSys'20): decaying histograms of
// usage, recommendation = percentile x (1 + margin) every sample interval, and the limit is
// the largest recommendation of the last hour. Wall-clock parameters are divided by the
// compression.
struct AutopilotParams {
  double cpu_half_life_s = 12 * 3600;
  double memory_half_life_s = 48 * 3600;
  double cpu_percentile = 95;
  double memory_percentile = 98;
  double cpu_margin = 0.10;
  double memory_margin = 0.15;
  double sample_s = 300;    // a recommendation per 5-minute sample
  double window_s = 3600;   // limit = max of the recommendations over the last hour
};

class AutopilotController final : public policy::ContainerController {
 public:
  AutopilotController(const policy::ControllerParams& params, double compression, const AutopilotParams& p = {});
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "autopilot"; }

 private:
  struct Recommendation {
    double t_s;
    double cpu_cores;
    double memory_bytes;
  };
  policy::ControllerParams params_;
  AutopilotParams p_;
  DecayingHistogram cpu_, memory_;
  std::deque<Recommendation> recent_;
  double now_s_ = 0, next_sample_s_ = 0;
  policy::Limits limits_;
};

// Escra's event rules (Middleware'22), applied every tick: a throttled period grows the CPU
// limit; more than 20% of it unused shrinks it to 0.8x; memory.max is granted in slices when
// usage comes within a slice of it, and given back a slice at a time when several are unused.
struct EscraParams {
  double grow_factor = 1.2;
  double unused_share = 0.2;
  double shrink_factor = 0.8;
  std::uint64_t memory_slice_bytes = 64ull << 20;
  int memory_free_slices = 3;  // give back a slice when more than this many are unused
};

class EscraController final : public policy::ContainerController {
 public:
  EscraController(const policy::ControllerParams& params, const EscraParams& p = {}) : params_(params), p_(p) {}
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "escra"; }

 private:
  policy::ControllerParams params_;
  EscraParams p_;
};

// Autothrottle's per-container Captain (Wang et al., NSDI'24), CPU only: it steers the CPU
// limit so that the share of throttled periods over each control interval stays at a target:
// above it, the limit grows in proportion to the excess; below it, the limit falls toward
// the interval's peak usage plus a margin, a step at a time. Memory stays at the limit the
// container declared. The target is fixed here (Autothrottle's Tower would tune it per service).
struct AutothrottleParams {
  double target_throttle_ratio = 0.05;
  double interval_s = 1;   // Captain's interval: sub-second dynamics, not scaled
  double up_gain = 2;      // limit x (1 + up_gain x (ratio - target)), at most x2
  double down_step = 0.1;  // at most 10% lower per interval
  double margin = 0.1;     // never below peak usage x (1 + margin)
};

class AutothrottleController final : public policy::ContainerController {
 public:
  AutothrottleController(const policy::ControllerParams& params, const AutothrottleParams& p = {})
      : params_(params), p_(p) {}
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "autothrottle"; }

 private:
  policy::ControllerParams params_;
  AutothrottleParams p_;
  double elapsed_s_ = 0, throttled_sum_ = 0, peak_usage_ = 0;
  int ticks_ = 0;
};

}  // namespace ebb::sim
