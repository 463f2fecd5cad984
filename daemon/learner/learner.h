#pragma once
// The online learner: one controller per container that forecasts next-tick CPU demand with
// recursive least squares, puts the CPU limit at the quantile of that forecast which meets the
// container's objective with the least slack, follows the working set for memory with pressure
// feedback, and hands CPU control to the rule-based heuristic whenever it cannot be trusted.
// docs/learner.md derives every rule.
#include "daemon/learner/forecaster.h"
#include "daemon/learner/guard.h"
#include "daemon/learner/headroom.h"
#include "daemon/learner/memory.h"
#include "daemon/policy/heuristic.h"
#include "daemon/policy/policy.h"

namespace ebb::learner {

struct CpuParams {
  // Censoring: on a throttled tick usage is only a lower bound of demand, which is taken as
  // max(usage x (1 + censored_inflation x throttled share of periods),
  //     usage / (1 - min(throttled seconds per second, max_throttled_share))).
  double censored_inflation = 0.1;
  double max_throttled_share = 0.75;
  double max_violation_weight = 10;  // cap of a tick's demand / mean demand in the violation
  // A tick throttled only briefly counts as that share of the interval times this (the work
  // that then waits for the backlog to drain counts too), not as a wholly throttled tick.
  double throttled_time_weight = 5;
  double throttled_boost = 1.0;   // on throttling: limit >= current x (1 + this x share)
  double min_sigma_share = 0.02;  // sigma >= this x forecast ...
  double min_sigma_cores = 0.005; // ... and >= this: a floor against a too-quiet fit
  // Hard bounds on every CPU decision, learner's or heuristic's: per tick the limit moves
  // within [current x max_lower_factor, current x max_raise_factor + min_step_cores].
  double max_raise_factor = 8.0;
  double max_lower_factor = 0.6;
  double min_step_cores = 0.1;
  // Hysteresis against write churn: a new limit less than hold_lower below the one in force,
  // or less than hold_raise above it, is not written (the limit in force is kept). A raise on
  // a throttled or starving tick always goes out. Holding small raises too (0.01-0.02) saves a
  // few more writes but let phases/spikes in ebb-sim reach 1.0% throttled at seed 2.
  double hold_lower = 0.05;
  double hold_raise = 0;
};

struct LearnerParams {
  ForecasterParams forecast;
  HeadroomParams headroom;
  CpuParams cpu;
  GuardParams guard;
  MemoryParams memory;
  policy::HeuristicParams fallback;  // the heuristic the guard falls back to
};

// Decisions name their source "learner" or "fallback"; a fallback's reason starts with
// "fallback: " and says why. predicted_cpu_cores is the mean forecast for the next tick.
policy::ControllerFactory learner_factory(const LearnerParams& params = {});

}  // namespace ebb::learner
