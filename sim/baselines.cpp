#include "sim/baselines.h"

#include <algorithm>

namespace ebb::sim {

using policy::Decision;
using policy::Observation;

StaticController::StaticController(const policy::ControllerParams& params, const TraceSummary& summary,
                                   const StaticParams& p) {
  const double cpu = summary.tick_cpu_cores.percentile(p.cpu_percentile) * (1 + p.cpu_margin);
  limits_.cpu_cores = std::clamp(cpu, params.bounds.cpu_min_cores, policy::cpu_ceiling(params));
  const double memory = static_cast<double>(summary.peak_memory_bytes) * (1 + p.memory_margin);
  limits_.memory_max_bytes = std::clamp(static_cast<std::uint64_t>(memory), params.bounds.memory_min_bytes,
                                        policy::memory_ceiling(params));
}

Decision StaticController::decide(const Observation&) { return {limits_, "static", "fixed from the trace", {}}; }

Decision OracleController::decide(const Observation&) {
  Decision d;
  d.source = "oracle";
  d.limits.cpu_cores = next_.peak_cpu_cores();
  d.limits.memory_max_bytes = next_.memory_bytes();
  return d;
}

}  // namespace ebb::sim
