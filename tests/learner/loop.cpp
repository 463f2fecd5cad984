#include "tests/learner/loop.h"

#include <algorithm>

namespace ebb::learner::testing {

LoopResult run_loop(policy::ContainerController& controller, const std::function<double(int, int)>& demand,
                    int ticks, double initial_limit) {
  constexpr int kSubsteps = 10;
  constexpr double kTick = 0.1, kDt = kTick / kSubsteps;
  LoopResult r;
  policy::Observation o;
  o.interval_s = kTick;
  o.first = true;
  o.cpu_limit_cores = initial_limit;
  o.memory_current_bytes = o.memory_working_set_bytes = 256ull << 20;
  double limit = controller.decide(o).limits.cpu_cores.value_or(initial_limit);
  o.first = false;

  double backlog = 0, usage_sum = 0, slack_sum = 0, demand_sum = 0, unserved = 0;
  for (int t = 0; t < ticks; ++t) {
    double quota = limit * kTick, served = 0, throttled_s = 0;
    for (int j = 0; j < kSubsteps; ++j) {
      const double arrive = demand(t, j) * kDt;
      const double serve = std::min(backlog + arrive, quota);
      quota -= serve;
      served += serve;
      backlog += arrive - serve;
      if (backlog < 1e-12) backlog = 0;
      demand_sum += arrive;
      if (backlog > 0) {
        unserved += std::min(arrive, backlog);
        throttled_s += kDt;
      }
    }
    const double usage = served / kTick;
    usage_sum += usage;
    slack_sum += limit - usage;
    o.cpu_usage_cores = usage;
    o.cpu_throttled_periods = throttled_s > 0 ? 1 : 0;
    o.cpu_throttled_s_per_s = throttled_s / kTick;
    o.cpu_limit_cores = limit;
    o.memory_high_bytes = 512ull << 20;
    o.memory_max_bytes = 1ull << 30;
    const auto d = controller.decide(o);
    if (d.source == "learner") ++r.learner_ticks;
    const double next = d.limits.cpu_cores.value_or(limit);
    r.cpu_writes += next != limit;
    limit = next;
  }
  r.relative_slack = slack_sum / usage_sum;
  r.throttled_fraction = unserved / demand_sum;
  return r;
}

}  // namespace ebb::learner::testing
