#include "sim/baselines.h"

#include <algorithm>
#include <cmath>

namespace ebb::sim {

using policy::Decision;
using policy::Limits;
using policy::Observation;

namespace {

double clamp_cpu(const policy::ControllerParams& p, double cores) {
  const double ceiling = policy::cpu_ceiling(p);
  return std::clamp(cores, std::min(p.bounds.cpu_min_cores, ceiling), ceiling);
}

std::uint64_t clamp_memory(const policy::ControllerParams& p, double bytes) {
  const double ceiling = static_cast<double>(policy::memory_ceiling(p));
  return static_cast<std::uint64_t>(std::clamp(bytes, std::min(static_cast<double>(p.bounds.memory_min_bytes), ceiling), ceiling));
}

// The limits in force, which a controller keeps until it has reason to change them.
Limits current(const Observation& o) { return {o.cpu_limit_cores, o.memory_high_bytes, o.memory_max_bytes}; }

VpaParams scaled(VpaParams p, double compression) {
  p.half_life_s /= compression;
  p.interval_s /= compression;
  p.memory_window_s /= compression;
  return p;
}

AutopilotParams scaled(AutopilotParams p, double compression) {
  p.cpu_half_life_s /= compression;
  p.memory_half_life_s /= compression;
  p.sample_s /= compression;
  p.window_s /= compression;
  return p;
}

}  // namespace

StaticController::StaticController(const policy::ControllerParams& params, const TraceSummary& summary,
                                   const StaticParams& p) {
  const double cpu = summary.tick_cpu_cores.percentile(p.cpu_percentile) * (1 + p.cpu_margin);
  limits_.cpu_cores = clamp_cpu(params, cpu);
  limits_.memory_max_bytes = clamp_memory(params, static_cast<double>(summary.peak_memory_bytes) * (1 + p.memory_margin));
}

Decision StaticController::decide(const Observation&) { return {limits_, "static", "fixed from the trace", {}}; }

Decision OracleController::decide(const Observation& o) {
  Decision d;
  decide_into(o, d);
  return d;
}

void OracleController::decide_into(const Observation&, Decision& out) {
  policy::assign_text(out.source, "oracle");
  out.reason.clear();
  out.predicted_cpu_cores.reset();
  out.limits.cpu_cores = cpu_ == Cpu::peak ? next_.peak_cores() : next_.unthrottled_cores();
  out.limits.memory_high_bytes.reset();
  out.limits.memory_max_bytes = next_.memory_bytes();
}

VpaController::VpaController(const policy::ControllerParams& params, double compression, const VpaParams& p)
    : params_(params),
      p_(scaled(p, compression)),
      cpu_(p.cpu_first_bucket, p.bucket_ratio, 2 * policy::cpu_ceiling(params), p_.half_life_s),
      memory_(p.memory_first_bucket, p.bucket_ratio, 2 * static_cast<double>(policy::memory_ceiling(params)),
              p_.half_life_s) {}

Decision VpaController::decide(const Observation& o) {
  if (o.first) {
    limits_ = current(o);
    return {limits_, "vpa", "initial", {}};
  }
  now_s_ += o.interval_s;
  interval_usage_ += o.cpu_usage_cores * o.interval_s;
  interval_s_ += o.interval_s;
  window_peak_ = std::max(window_peak_, static_cast<double>(o.memory_current_bytes));
  if (o.oom_kill_events > 0) {
    const double at = static_cast<double>(o.memory_max_bytes.value_or(o.memory_current_bytes));
    window_peak_ = std::max({window_peak_, at + static_cast<double>(p_.oom_min_bump_bytes), at * p_.oom_bump_ratio});
  }
  if (interval_s_ + 1e-9 < p_.interval_s) return {limits_, "vpa", "between intervals", {}};

  cpu_.advance(now_s_);
  memory_.advance(now_s_);
  cpu_.add(interval_usage_ / interval_s_);
  interval_usage_ = interval_s_ = 0;
  if (now_s_ - window_start_s_ + 1e-9 >= p_.memory_window_s) {
    memory_.add(window_peak_);
    window_peak_ = 0;
    window_start_s_ = now_s_;
  }
  limits_.cpu_cores = clamp_cpu(params_, cpu_.percentile(p_.target_percentile) * (1 + p_.margin));
  // The open window's peak counts as a sample already, as VPA's does.
  memory_.add(window_peak_);
  const double memory = memory_.percentile(p_.target_percentile);
  memory_.add(window_peak_, -1);
  limits_.memory_max_bytes = clamp_memory(params_, memory * (1 + p_.margin));
  return {limits_, "vpa", "recommendation", {}};
}

AutopilotController::AutopilotController(const policy::ControllerParams& params, double compression,
                                         const AutopilotParams& p)
    : params_(params),
      p_(scaled(p, compression)),
      cpu_(0.01, 1.05, 2 * policy::cpu_ceiling(params), p_.cpu_half_life_s),
      memory_(1e7, 1.05, 2 * static_cast<double>(policy::memory_ceiling(params)), p_.memory_half_life_s) {}

Decision AutopilotController::decide(const Observation& o) {
  if (o.first) {
    limits_ = current(o);
    next_sample_s_ = p_.sample_s;
    return {limits_, "autopilot", "initial", {}};
  }
  now_s_ += o.interval_s;
  cpu_.advance(now_s_);
  memory_.advance(now_s_);
  cpu_.add(o.cpu_usage_cores);
  memory_.add(static_cast<double>(o.memory_current_bytes));
  if (now_s_ + 1e-9 < next_sample_s_) return {limits_, "autopilot", "between samples", {}};

  next_sample_s_ += p_.sample_s;
  recent_.push_back({now_s_, cpu_.percentile(p_.cpu_percentile) * (1 + p_.cpu_margin),
                     memory_.percentile(p_.memory_percentile) * (1 + p_.memory_margin)});
  while (recent_.front().t_s < now_s_ - p_.window_s - 1e-9) recent_.pop_front();
  double cpu = 0, memory = 0;
  for (const auto& r : recent_) {
    cpu = std::max(cpu, r.cpu_cores);
    memory = std::max(memory, r.memory_bytes);
  }
  limits_.cpu_cores = clamp_cpu(params_, cpu);
  limits_.memory_max_bytes = clamp_memory(params_, memory);
  return {limits_, "autopilot", "max of the window's recommendations", {}};
}

Decision EscraController::decide(const Observation& o) {
  Decision d{current(o), "escra", "steady", {}};
  if (o.first) return d;
  double cpu = policy::effective_cpu_limit(o, params_);
  if (o.cpu_throttled_periods > 0) {
    cpu *= p_.grow_factor;
    d.reason = "throttled: grow";
  } else if (o.cpu_usage_cores < (1 - p_.unused_share) * cpu) {
    cpu *= p_.shrink_factor;
    d.reason = "unused: shrink";
  }
  d.limits.cpu_cores = clamp_cpu(params_, cpu);

  const double slice = static_cast<double>(p_.memory_slice_bytes);
  const double usage = static_cast<double>(o.memory_current_bytes);
  double memory = static_cast<double>(o.memory_max_bytes.value_or(policy::memory_ceiling(params_)));
  if (o.oom_kill_events > 0 || o.memory_max_events > 0) {
    memory += slice;  // the limit was hit: one more slice
  } else if (usage + slice > memory) {
    memory = (std::ceil(usage / slice) + 1) * slice;  // within a slice of the limit
  } else if (usage > 0 && memory - usage > p_.memory_free_slices * slice) {
    memory -= slice;  // a running container with unused slices gives one back
  }
  d.limits.memory_max_bytes = clamp_memory(params_, memory);
  return d;
}

Decision AutothrottleController::decide(const Observation& o) {
  Decision d{current(o), "autothrottle", "steady", {}};
  if (o.first) return d;
  elapsed_s_ += o.interval_s;
  throttled_sum_ += o.cpu_throttled_periods;
  peak_usage_ = std::max(peak_usage_, o.cpu_usage_cores);
  ++ticks_;
  if (elapsed_s_ + 1e-9 < p_.interval_s) return d;

  const double ratio = throttled_sum_ / ticks_;
  double cpu = policy::effective_cpu_limit(o, params_);
  if (ratio > p_.target_throttle_ratio) {
    cpu *= std::min(2.0, 1 + p_.up_gain * (ratio - p_.target_throttle_ratio));
    d.reason = "throttle ratio above target: grow";
  } else {
    cpu = std::max(peak_usage_ * (1 + p_.margin), cpu * (1 - p_.down_step));
    d.reason = "throttle ratio at or below target: shrink toward peak usage";
  }
  d.limits.cpu_cores = clamp_cpu(params_, cpu);
  elapsed_s_ = throttled_sum_ = peak_usage_ = 0;
  ticks_ = 0;
  return d;
}

}  // namespace ebb::sim
