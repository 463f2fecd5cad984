#pragma once
// A small closed loop for the learner's tests: one container under CFS bandwidth control with
// one 100 ms period per tick, demand in 10 ms substeps, unserved work queued into a backlog.
// It measures what ebb-sim measures (relative slack, throttled share of demand) without its
// workloads, so the tests can pin down known answers on signals they build themselves.
#include <functional>

#include "daemon/policy/policy.h"

namespace ebb::learner::testing {

struct LoopResult {
  double relative_slack = 0;      // sum(limit - usage) / sum(usage)
  double throttled_fraction = 0;  // demand that arrived while a backlog waited / all demand
  int learner_ticks = 0;          // decisions the learner made (not the fallback)
  int cpu_writes = 0;             // ticks whose decision changed cpu.max
};

// demand(tick, substep) in cores; the loop runs `ticks` ticks after the first observation.
LoopResult run_loop(policy::ContainerController& controller, const std::function<double(int, int)>& demand,
                    int ticks, double initial_limit);

}  // namespace ebb::learner::testing
