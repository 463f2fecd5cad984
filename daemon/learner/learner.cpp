#include "daemon/learner/learner.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <string_view>

namespace ebb::learner {
namespace {

using policy::Decision;
using policy::Observation;

// The learner writes a reason every tick, so it is cheap: whole numbers (millicores, the
// price rounded) through std::to_chars, a few dozen instructions each against hundreds for a
// floating-point conversion.
void append(std::string& out, std::string_view label, double value, double scale = 1000) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, std::llround(std::min(value * scale, 1e15))).ptr;
  out.append(label).append(buf, end);
}

bool finite(const Observation& o) {
  return std::isfinite(o.interval_s) && std::isfinite(o.cpu_usage_cores) && std::isfinite(o.cpu_throttled_periods) &&
         std::isfinite(o.cpu_throttled_s_per_s) && std::isfinite(o.cpu_limit_cores.value_or(0)) &&
         std::isfinite(o.cpu_pressure_some_avg10) && std::isfinite(o.runq_latency_p99_us.value_or(0)) &&
         std::isfinite(o.memory_pressure_some_avg10) && std::isfinite(o.reclaim_stall_s_per_s);
}

// A copy the heuristic and the memory controller can act on: non-finite rates read as zero.
Observation sanitized(Observation o) {
  for (double* v : {&o.interval_s, &o.cpu_usage_cores, &o.cpu_throttled_periods, &o.cpu_throttled_s_per_s,
                    &o.cpu_pressure_some_avg10, &o.memory_pressure_some_avg10, &o.reclaim_stall_s_per_s})
    if (!std::isfinite(*v)) *v = 0;
  if (o.cpu_limit_cores && !std::isfinite(*o.cpu_limit_cores)) o.cpu_limit_cores.reset();
  if (o.runq_latency_p99_us && !std::isfinite(*o.runq_latency_p99_us)) o.runq_latency_p99_us.reset();
  return o;
}

class LearnerController final : public policy::ContainerController {
 public:
  LearnerController(const policy::ControllerParams& params, const LearnerParams& learner)
      : params_(params),
        cpu_(learner.cpu),
        forecaster_(learner.forecast),
        headroom_(learner.headroom),
        guard_(learner.guard),
        memory_(params, learner.memory),
        heuristic_(params, learner.fallback) {}

  Decision decide(const Observation& raw) override;
  std::string name() const override { return "ebb"; }

 private:
  double demand(const Observation& o) const;
  double violation(const Observation& o, double demand) const;
  double current_limit(const Observation& o) const;  // cpu.max in force, within the bounds
  double bounded(double wanted, const Observation& o) const;
  double settled(double wanted, const Observation& o) const;

  policy::ControllerParams params_;
  CpuParams cpu_;
  DemandForecaster forecaster_;
  HeadroomSelector headroom_;
  Guard guard_;
  MemoryController memory_;
  policy::HeuristicController heuristic_;  // runs every tick: the fallback stays warm

  // What was proposed for the tick now ending, scored once its demand is known.
  struct Proposal {
    double forecast = 0;
    Scales scales{};
    double learner_limit = 0, heuristic_limit = 0;
  };
  std::optional<Proposal> pending_;
};

// Usage is censored at the limit: a throttled container would have used more. If it ran a share
// f of the interval and was throttled the rest, it would have kept its pace for the whole
// interval: demand >= usage / (1 - f). Since cpu.stat may not say how long (throttled_usec is
// a per-CPU sum on a real kernel, hence the cap), usage is also inflated by the throttled share
// of periods, so any throttling raises the estimate.
double LearnerController::demand(const Observation& o) const {
  const double share = std::clamp(o.cpu_throttled_periods, 0.0, 1.0);
  const double throttled_time = std::clamp(o.cpu_throttled_s_per_s, 0.0, cpu_.max_throttled_share);
  return std::max(o.cpu_usage_cores * (1 + cpu_.censored_inflation * share),
                  o.cpu_usage_cores / (1 - throttled_time));
}

// The objective's error signal, weighted by the tick's demand over its recent mean so that its
// average is a share of demand, like the throttled fraction: the throttled share of periods
// (a throttled period delays the rest of its work, and the backlog delays the next period's),
// but no more than throttled_time_weight x the share of the interval spent throttled; or, for
// a run-queue latency objective, how far the tick's p99 overshot the target (as a share,
// capped at 1).
double LearnerController::violation(const Observation& o, double demand) const {
  double v = std::min(std::clamp(o.cpu_throttled_periods, 0.0, 1.0),
                      cpu_.throttled_time_weight * std::clamp(o.cpu_throttled_s_per_s, 0.0, 1.0));
  const auto& target = params_.objective.runq_latency_p99_us;
  if (target && *target > 0 && o.runq_latency_p99_us)
    v = std::max(v, std::clamp(*o.runq_latency_p99_us / *target - 1, 0.0, 1.0));
  const double mean = forecaster_.long_mean();
  return mean > 0 ? v * std::min(demand / mean, cpu_.max_violation_weight) : v;
}

double LearnerController::current_limit(const Observation& o) const {
  const double ceiling = policy::cpu_ceiling(params_);
  return std::clamp(policy::effective_cpu_limit(o, params_), std::min(params_.bounds.cpu_min_cores, ceiling), ceiling);
}

double LearnerController::bounded(double wanted, const Observation& o) const {
  const double ceiling = policy::cpu_ceiling(params_);
  const double current = current_limit(o);
  const double stepped =
      std::clamp(wanted, current * cpu_.max_lower_factor, current * cpu_.max_raise_factor + cpu_.min_step_cores);
  return std::clamp(stepped, std::min(params_.bounds.cpu_min_cores, ceiling), ceiling);
}

// The hysteresis: small moves are not worth a cgroup write (and the next tick's noise would
// undo them), but a container that is being throttled gets its raise at once.
double LearnerController::settled(double wanted, const Observation& o) const {
  const double current = current_limit(o);
  if (wanted > current) {
    const bool short_of_cpu = o.cpu_throttled_periods > 0 || o.starving;
    return short_of_cpu || wanted > current * (1 + cpu_.hold_raise) ? wanted : current;
  }
  return wanted < current * (1 - cpu_.hold_lower) ? wanted : current;
}

Decision LearnerController::decide(const Observation& raw) {
  const bool usable = finite(raw);
  const Observation o = usable ? raw : sanitized(raw);
  Decision d = heuristic_.decide(o);
  const double heuristic_cpu = d.limits.cpu_cores.value_or(policy::cpu_ceiling(params_));

  std::optional<std::string> distrust;
  if (!usable) {
    distrust = "non-finite observation (ignored by the learner)";
  } else if (o.first) {
    distrust = "cold start (no previous snapshot)";
  } else {
    const double y = demand(o);
    if (pending_) {
      headroom_.score(pending_->forecast, pending_->scales, y);
      guard_.score(pending_->learner_limit, pending_->heuristic_limit, y, headroom_.lambda());
    }
    headroom_.price(violation(o, y), params_.objective.throttled_fraction);
    forecaster_.observe(y);

    const double forecast = forecaster_.forecast();
    const double sigma_floor = std::max(cpu_.min_sigma_share * forecast, cpu_.min_sigma_cores);
    const Scales scales{std::max(forecaster_.sigma_fast(), sigma_floor), std::max(forecaster_.sigma_slow(), sigma_floor),
                        std::max(forecaster_.peak() - forecast, 0.0)};
    const double headroom = headroom_.headroom(scales);
    double wanted = forecast + headroom;
    const double share = std::clamp(o.cpu_throttled_periods, 0.0, 1.0);
    if (share > 0) wanted = std::max(wanted, policy::effective_cpu_limit(o, params_) * (1 + cpu_.throttled_boost * share));

    double learner_cpu = 0;
    if (!forecaster_.finite() || !std::isfinite(wanted)) {
      forecaster_.reset();
      pending_.reset();
      guard_.trip_non_finite();
    } else {
      learner_cpu = bounded(wanted, o);
      // Each is scored on the limit its own rules would apply: the heuristic's steps are its own.
      pending_ = Proposal{forecast, scales, learner_cpu, heuristic_cpu};
      d.predicted_cpu_cores = forecast;
    }
    distrust = guard_.verdict(forecaster_.observations());
    if (!distrust) {
      d.source = "learner";
      d.reason.clear();
      d.reason.reserve(128);
      append(d.reason, "forecast ", forecast);
      append(d.reason, "m + headroom ", headroom);
      append(d.reason, "m (error RMS ", scales[0]);
      append(d.reason, "m/", scales[1]);
      append(d.reason, "m, to peak ", scales[2]);
      append(d.reason, "m, price ", headroom_.lambda(), 1);
      append(d.reason, "): limit ", learner_cpu);
      d.reason += "m cores";
      d.limits.cpu_cores = settled(learner_cpu, o);
      if (*d.limits.cpu_cores != learner_cpu) {
        append(d.reason, ", kept at ", *d.limits.cpu_cores);
        d.reason += "m (small move)";
      }
    }
  }

  if (distrust) {
    d.source = "fallback";
    d.reason = "fallback: " + *distrust + "; heuristic: " + d.reason;
    d.limits.cpu_cores = o.first ? heuristic_cpu : settled(bounded(heuristic_cpu, o), o);
  }
  d.limits.cpu_cores = policy::keep_unlimited(o.cpu_limit_cores, *d.limits.cpu_cores, policy::cpu_ceiling(params_));
  std::string memory_reason;
  memory_.decide(o, d.limits, memory_reason);
  if (!memory_reason.empty()) d.reason += "; " + memory_reason;
  return d;
}

}  // namespace

policy::ControllerFactory learner_factory(const LearnerParams& params) {
  return [params](const policy::ControllerParams& p) { return std::make_unique<LearnerController>(p, params); };
}

}  // namespace ebb::learner
