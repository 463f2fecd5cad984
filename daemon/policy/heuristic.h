#pragma once
// Policy v0: a rule-based controller. CPU: raise cpu.max fast on throttling, lower it slowly
// after sustained slack. Memory: memory.high just above the working set, memory.max a safety
// net with headroom that is raised before usage can reach it and never put below usage.
#include <cstdint>
#include <optional>

#include "daemon/policy/policy.h"

namespace ebb::policy {

struct HeuristicParams {
  double raise_throttled_periods = 0.02;  // throttled share of periods that triggers a raise
  double raise_factor = 1.5;              // new limit >= this x max(limit, usage)
  double max_raise_factor = 3.0;          // per tick
  double slack_usage_ratio = 0.6;         // usage below this share of the limit is slack
  int slack_ticks = 3;                    // consecutive slack ticks before lowering
  double lower_factor = 0.7;              // per tick, at most this much lower
  double cpu_headroom = 1.3;              // target = usage x headroom when lowering
  double cpu_min_headroom_cores = 0.05;

  double memory_high_headroom = 1.2;       // memory.high = working set x this ...
  std::uint64_t memory_high_min_gap = 16ull << 20;   // ... and at least this above it
  double memory_max_headroom = 1.25;       // memory.max >= memory.high x this ...
  std::uint64_t memory_max_min_gap = 64ull << 20;    // ... and >= usage + max(25%, this)
  double memory_raise_at = 0.8;            // raise memory.max when usage exceeds this share
  double memory_lower_factor = 0.9;        // per tick
  double memory_event_raise = 1.5;         // memory.max x this on an OOM kill or a max event
  int memory_hold_ticks = 50;              // ... then no lowering for this long: a restarted
                                           // container reads ~0 bytes but will need them again
};

class HeuristicController final : public ContainerController {
 public:
  HeuristicController(const ControllerParams& params, const HeuristicParams& rules = {});
  Decision decide(const Observation& observation) override;
  void decide_into(const Observation& observation, Decision& out) override;
  std::string name() const override { return "heuristic"; }

 private:
  std::optional<double> decide_cpu(const Observation& o, std::string& reason);
  void decide_memory(const Observation& o, Limits& limits, std::string& reason);

  ControllerParams params_;
  HeuristicParams rules_;
  int slack_streak_ = 0;
  int memory_hold_ = 0;           // ticks left without lowering memory after a limit hit
  std::uint64_t memory_peak_ = 0; // highest usage seen since the last limit hit
};

ControllerFactory heuristic_factory(const HeuristicParams& rules = {});

}  // namespace ebb::policy
