#include "daemon/policy/heuristic.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

namespace ebb::policy {

double cpu_ceiling(const ControllerParams& p) {
  return p.bounds.cpu_max_cores > 0 ? std::min(p.bounds.cpu_max_cores, p.node_cpu_cores) : p.node_cpu_cores;
}

std::uint64_t memory_ceiling(const ControllerParams& p) {
  return p.bounds.memory_max_bytes > 0 ? std::min(p.bounds.memory_max_bytes, p.node_memory_bytes)
                                       : p.node_memory_bytes;
}

double effective_cpu_limit(const Observation& o, const ControllerParams& p) {
  return o.cpu_limit_cores.value_or(cpu_ceiling(p));
}

HeuristicController::HeuristicController(const ControllerParams& params, const HeuristicParams& rules)
    : params_(params), rules_(rules) {}

namespace {
// Reasons are written on every tick that moves a limit, which in ebb-sim is nearly every tick:
// snprintf's float formatting was 11% of its instructions, and std::to_chars with a precision
// still ~500 instructions a number. Rounding to an integer of hundredths and printing that
// gives the same text for the magnitudes a reason shows, in a few dozen.
void append_fixed(std::string& out, double value, std::size_t decimals) {
  if (!std::isfinite(value)) {
    out += "nan";
    return;
  }
  const double scale = decimals == 0 ? 1 : decimals == 1 ? 10 : 100;
  const long long scaled = std::llround(std::clamp(value * scale, -1e15, 1e15));
  if (scaled < 0) out += '-';
  char buf[24];
  const std::string_view digits(buf, std::to_chars(buf, buf + sizeof buf, std::llabs(scaled)).ptr);
  const std::size_t whole = digits.size() > decimals ? digits.size() - decimals : 0;
  if (whole == 0) out += '0';
  out.append(digits.substr(0, whole));
  if (decimals == 0) return;
  out += '.';
  out.append(decimals - (digits.size() - whole), '0');
  out.append(digits.substr(whole));
}

void note(std::string& reason, std::string_view what) {
  if (!reason.empty()) reason += "; ";
  reason += what;
}
}  // namespace

std::optional<double> HeuristicController::decide_cpu(const Observation& o, std::string& reason) {
  const double floor = std::min(params_.bounds.cpu_min_cores, cpu_ceiling(params_));
  const double ceiling = cpu_ceiling(params_);
  const double limit = std::clamp(effective_cpu_limit(o, params_), floor, ceiling);
  if (o.first) return o.cpu_limit_cores ? std::optional<double>(limit) : std::nullopt;

  if (o.cpu_throttled_periods > rules_.raise_throttled_periods || o.starving) {
    slack_streak_ = 0;
    double wanted = rules_.raise_factor * std::max(limit, o.cpu_usage_cores);
    wanted = std::min(wanted, limit * rules_.max_raise_factor + rules_.cpu_min_headroom_cores);
    reason = "cpu throttled in ";
    append_fixed(reason, o.cpu_throttled_periods * 100, 0);
    reason += "% of periods: raise to ";
    append_fixed(reason, std::min(wanted, ceiling), 2);
    reason += " cores";
    return keep_unlimited(o.cpu_limit_cores, std::clamp(wanted, floor, ceiling), ceiling);
  }

  if (o.cpu_usage_cores < rules_.slack_usage_ratio * limit) {
    ++slack_streak_;
  } else {
    slack_streak_ = 0;
  }
  if (slack_streak_ < rules_.slack_ticks) return keep_unlimited(o.cpu_limit_cores, limit, ceiling);

  const double target = std::max(o.cpu_usage_cores * rules_.cpu_headroom,
                                 o.cpu_usage_cores + rules_.cpu_min_headroom_cores);
  const double lowered = std::clamp(std::max(target, limit * rules_.lower_factor), floor, ceiling);
  if (lowered < limit) {
    reason = "cpu slack: usage ";
    append_fixed(reason, o.cpu_usage_cores, 2);
    reason += " cores, lower to ";
    append_fixed(reason, lowered, 2);
  }
  return keep_unlimited(o.cpu_limit_cores, lowered, ceiling);
}

void HeuristicController::decide_memory(const Observation& o, Limits& limits, std::string& reason) {
  const std::uint64_t ceiling = memory_ceiling(params_);
  const std::uint64_t floor = std::min(params_.bounds.memory_min_bytes, ceiling);
  const std::uint64_t current_high = std::min(o.memory_high_bytes.value_or(ceiling), ceiling);
  const std::uint64_t current_max = std::min(o.memory_max_bytes.value_or(ceiling), ceiling);
  const double usage = static_cast<double>(o.memory_current_bytes);
  const double working_set = static_cast<double>(o.memory_working_set_bytes ? o.memory_working_set_bytes
                                                                            : o.memory_current_bytes);
  if (o.first) {
    limits.memory_high_bytes = o.memory_high_bytes;
    limits.memory_max_bytes = o.memory_max_bytes;
    return;
  }

  auto clamp_bytes = [&](double v) {
    return static_cast<std::uint64_t>(std::clamp(v, static_cast<double>(floor), static_cast<double>(ceiling)));
  };
  const bool pressured = o.memory_high_events > 0 ||
                         o.memory_pressure_some_avg10 > params_.objective.memory_pressure_some_avg10 ||
                         o.reclaim_stall_s_per_s > 0.01;

  const double high_target = std::max(working_set * rules_.memory_high_headroom,
                                      working_set + static_cast<double>(rules_.memory_high_min_gap));
  double high;
  if (pressured) {
    high = std::max({high_target, usage * rules_.memory_high_headroom, static_cast<double>(current_high)});
    if (high > current_high) note(reason, "memory pressure: raise memory.high");
  } else if (high_target >= current_high) {
    high = high_target;
  } else {
    high = std::max(high_target, current_high * rules_.memory_lower_factor);
  }

  // memory.max: never below usage plus a margin; raised at once when usage nears it; after it
  // was hit (OOM kill, max event) raised and held, since a restarted container reads ~0 bytes.
  const double gap = std::max(usage * 0.25, static_cast<double>(rules_.memory_max_min_gap));
  const double max_target = std::max(high_target * rules_.memory_max_headroom, usage + gap);
  double max;
  const bool hit = o.memory_max_events > 0 || o.oom_kill_events > 0;
  const bool near_max = usage > rules_.memory_raise_at * current_max;
  if (hit) {
    memory_hold_ = rules_.memory_hold_ticks;
    max = std::max({max_target, current_max * rules_.memory_event_raise, memory_peak_ * rules_.memory_event_raise});
    note(reason, "memory.max was hit: raise it and hold");
  } else if (near_max || max_target >= current_max) {
    max = std::max(max_target, near_max ? usage + 2 * gap : max_target);
    if (max > current_max) note(reason, "memory nearing memory.max: raise it");
  } else if (memory_hold_ > 0) {
    max = current_max;
  } else {
    max = std::max(max_target, current_max * rules_.memory_lower_factor);
  }
  if (memory_hold_ > 0) {
    --memory_hold_;
    high = std::max(high, static_cast<double>(current_high));
  } else {
    memory_peak_ = 0;
  }
  memory_peak_ = std::max(memory_peak_, o.memory_current_bytes);
  const std::uint64_t new_max = clamp_bytes(max);
  limits.memory_max_bytes = keep_unlimited(o.memory_max_bytes, new_max, ceiling);
  limits.memory_high_bytes = keep_unlimited(o.memory_high_bytes, std::min(clamp_bytes(high), new_max), ceiling);
}

Decision HeuristicController::decide(const Observation& o) {
  Decision d;
  decide_into(o, d);
  return d;
}

void HeuristicController::decide_into(const Observation& o, Decision& d) {
  assign_text(d.source, "heuristic");
  d.reason.clear();
  d.predicted_cpu_cores.reset();
  d.limits.cpu_cores = decide_cpu(o, d.reason);
  decide_memory(o, d.limits, d.reason);
  if (d.reason.empty()) d.reason = "steady";
}

ControllerFactory heuristic_factory(const HeuristicParams& rules) {
  return [rules](const ControllerParams& params) { return std::make_unique<HeuristicController>(params, rules); };
}

}  // namespace ebb::policy
