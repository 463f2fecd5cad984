#pragma once
// The policies ebb is compared with, each a ContainerController built from its published
// description (docs/baselines.md gives the sources, the rules and every parameter).
#include <cstdint>
#include <deque>
#include <vector>

#include "daemon/policy/policy.h"
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

// The clairvoyant oracle at tick granularity: each limit is the peak demand of the tick it
// will govern, the least a controller acting once a tick can set without throttling.
class OracleController final : public policy::ContainerController {
 public:
  explicit OracleController(const NextTick& next) : next_(next) {}
  policy::Decision decide(const policy::Observation& observation) override;
  std::string name() const override { return "oracle"; }

 private:
  const NextTick& next_;
};

}  // namespace ebb::sim
