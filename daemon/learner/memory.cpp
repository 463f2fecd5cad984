#include "daemon/learner/memory.h"

#include <algorithm>
#include <cmath>

namespace ebb::learner {

MemoryController::MemoryController(const policy::ControllerParams& params, const MemoryParams& memory)
    : params_(params),
      memory_(memory),
      headroom_(memory.high_headroom_initial),
      jump_decay_(std::exp2(-params.tick_s / memory.jump_half_life_s)),
      max_decay_(std::exp2(-params.tick_s / memory.max_half_life_s)) {}

namespace {
void append(std::string& reason, const char* what) {
  if (!reason.empty()) reason += "; ";
  reason += what;
}
}  // namespace

void MemoryController::decide(const policy::Observation& o, policy::Limits& limits, std::string& reason) {
  const double ceiling = static_cast<double>(policy::memory_ceiling(params_));
  const double floor = std::min(static_cast<double>(params_.bounds.memory_min_bytes), ceiling);
  const double usage = static_cast<double>(o.memory_current_bytes);
  const double working_set =
      static_cast<double>(o.memory_working_set_bytes ? o.memory_working_set_bytes : o.memory_current_bytes);
  const double current_high = std::min(static_cast<double>(o.memory_high_bytes.value_or(~0ull)), ceiling);
  const double current_max = std::min(static_cast<double>(o.memory_max_bytes.value_or(~0ull)), ceiling);

  // The first observation has no previous snapshot: its usage may read zero, and a jump from
  // there would be taken for growth.
  if (previous_usage_ >= 0) largest_jump_ = std::max(largest_jump_ * jump_decay_, usage - previous_usage_);
  previous_usage_ = o.first ? -1 : usage;

  const bool stalled = o.reclaim_stall_s_per_s > memory_.reclaim_stall_threshold;
  const bool pressured = o.memory_high_events > 0 || stalled ||
                         o.memory_pressure_some_avg10 > params_.objective.memory_pressure_some_avg10;
  const bool hit_max = o.memory_max_events > 0 || o.oom_kill_events > 0;

  // The safety net: whatever else happens, memory.max stays a margin above usage that covers
  // the largest one-tick growth seen lately (a spike that came once is expected again).
  const double gap = std::max({usage * memory_.max_margin_share, static_cast<double>(memory_.max_min_gap),
                               memory_.jump_safety * largest_jump_});
  // Within the band, the value in force stays: a write would move it by noise.
  const auto held = [&](double wanted, double current) {
    return std::abs(wanted - current) < memory_.hold_band * current ? current : wanted;
  };
  double high;
  if (o.first) {
    high = current_high;
    net_ = std::max(current_max, usage + gap);
  } else {
    if (pressured || hit_max) {
      headroom_ = std::min(headroom_ * memory_.back_off, memory_.high_headroom_max);
      append(reason, "memory pressure: back memory.high off");
    } else {
      headroom_ = std::max(headroom_ * memory_.probe_down, memory_.high_headroom_min);
    }
    high = working_set * headroom_;
    // Under pressure at least a step above the value in force, or above usage where that is
    // lower: pressure that lasts while usage stays below memory.high (node-wide reclaim, I/O)
    // would otherwise raise it tick after tick, and memory.max with it.
    if (pressured) high = std::max(high, std::min({current_high, usage, ceiling}) * memory_.back_off);
    else high = held(high, current_high);

    // The net is the controller's own state, so that it comes down at its half-life even when
    // each tick's step is inside the hysteresis band.
    const double target = std::max(usage + gap, high);
    if (net_ < 0) net_ = current_max;
    if (hit_max) {
      net_ = std::max(target, current_max * memory_.max_event_bump);
      append(reason, "memory.max hit: raise it");
    } else if (stalled) {
      // Reclaim under memory.high stalls too, tick after tick while a container grows against
      // it: the bump goes no further than that factor over usage and margin, or it would
      // compound on every stalled tick.
      net_ = std::max({target, net_, std::min(current_max, usage + gap) * memory_.max_event_bump});
      append(reason, "reclaim stalls: raise memory.max");
    } else if (o.memory_high_events > 0) {
      net_ = std::max(target, net_);
    } else {
      net_ = std::max(target, net_ * max_decay_);
    }
  }
  const double max = net_ > current_max ? net_ : held(net_, current_max);
  const auto bytes = [&](double v) { return static_cast<std::uint64_t>(std::clamp(v, floor, ceiling)); };
  const auto node_ceiling = static_cast<std::uint64_t>(ceiling);
  limits.memory_max_bytes = policy::keep_unlimited(o.memory_max_bytes, bytes(max), node_ceiling);
  limits.memory_high_bytes =
      policy::keep_unlimited(o.memory_high_bytes, std::min(bytes(high), bytes(max)), node_ceiling);
}

}  // namespace ebb::learner
