#pragma once
// The online learner: one controller per container that predicts next-tick CPU demand with
// recursive least squares, sets the CPU limit at the quantile of that forecast which meets the
// container's objective with the least slack, follows the working set for memory with pressure
// feedback, and hands control to the rule-based heuristic whenever it cannot be trusted.
// docs/learner.md derives every rule below.
#include <array>
#include <cstdint>

#include "daemon/policy/heuristic.h"
#include "daemon/policy/policy.h"

namespace ebb::learner {

struct LearnerParams {
  // Demand forecast: RLS over recent demand with exponential forgetting.
  double forgetting = 0.97;             // RLS lambda: memory of about 1 / (1 - lambda) ticks
  double initial_covariance = 100;      // P0 = this x I; also the anti-windup trace bound
  double residual_decay = 0.95;         // EWMA of squared forecast errors (the uncertainty)
  double min_sigma_share = 0.02;        // sigma >= this x demand: a floor against a too-quiet fit

  // Censoring: a throttled tick's usage is a lower bound; demand is taken as usage inflated by
  // this much per unit of throttled share of periods (and never below the limit that bound it).
  double censored_inflation = 1.0;

  // Headroom: exponential weights over sigma multipliers, each scored on the counterfactual
  // loss slack + lambda x shortfall; lambda is the dual price of the throttling objective.
  std::array<double, 10> multipliers{0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0};
  double hedge_rate = 2.0;              // learning rate of the exponential weights
  double dual_rate = 0.03;              // log-lambda step per unit of relative objective error
  double dual_max_step = 1.0;           // |change of log lambda| per tick
  double lambda_initial = 20.0;
  double lambda_min = 1.0;
  double lambda_max = 2000.0;
  double throttled_boost = 1.0;         // on throttling: limit >= old x (1 + boost x share)

  // Safety guard.
  int warmup_ticks = 10;                // cold start: the heuristic decides until then
  int misprediction_streak = 3;         // consecutive throttled ticks that trip the guard
  double loss_ratio = 2.0;              // learner loss above this x the heuristic's trips it
  double loss_decay = 0.9;              // EWMA of both losses
  int fallback_ticks = 20;              // how long a tripped guard keeps the heuristic in charge
  double max_raise_factor = 4.0;        // per tick, plus min_step_cores
  double max_lower_factor = 0.6;        // per tick: the limit never drops below old x this
  double min_step_cores = 0.1;

  // Memory: memory.high = working set x a headroom that probes down slowly and backs off fast.
  double memory_high_headroom_initial = 1.3;
  double memory_high_headroom_min = 1.05;
  double memory_high_headroom_max = 2.0;
  double memory_probe_down = 0.995;     // per calm tick
  double memory_back_off = 1.2;         // per pressured tick
  double memory_max_margin_share = 0.25;         // memory.max >= usage x (1 + this) ...
  std::uint64_t memory_max_min_gap = 64ull << 20;  // ... and >= usage + this ...
  double memory_jump_safety = 2.0;      // ... and >= usage + this x the largest recent jump
  double memory_jump_decay = 0.999;     // per tick decay of that largest jump
  double reclaim_stall_threshold = 0.01;  // s/s of reclaim stall that counts as pressure

  policy::HeuristicParams fallback;     // the heuristic the guard falls back to
};

policy::ControllerFactory learner_factory(const LearnerParams& params = {});

}  // namespace ebb::learner
