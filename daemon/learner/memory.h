#pragma once
// Memory limits: memory.high follows the working set times a headroom that is probed down
// slowly while memory pressure stays under the objective and backed off fast when it rises;
// memory.max is the safety net above current usage by a margin that covers the largest recent
// one-tick growth, raised at once on memory.events high/max or reclaim stalls.
#include <cstdint>
#include <string>

#include "daemon/policy/policy.h"

namespace ebb::learner {

struct MemoryParams {
  double high_headroom_initial = 1.3;
  double high_headroom_min = 1.05;
  double high_headroom_max = 2.0;
  double probe_down = 0.995;          // headroom factor per calm tick
  double back_off = 1.25;             // headroom factor per pressured tick
  double max_margin_share = 0.25;     // memory.max >= usage x (1 + this) ...
  std::uint64_t max_min_gap = 64ull << 20;  // ... and >= usage + this ...
  double jump_safety = 2.0;           // ... and >= usage + this x the largest recent growth
  double jump_half_life_s = 600;      // how fast that largest growth is forgotten
  double max_event_bump = 1.5;        // memory.max x this on a max/oom event or a stall
  // memory.max comes down no faster than this half-life: a generous safety net costs nothing
  // until the node runs short of memory, and an OOM kill costs the container's work.
  double max_half_life_s = 600;
  double reclaim_stall_threshold = 0.01;  // s/s of reclaim stall that counts as pressure
  // Hysteresis against write churn: without pressure or an event, a memory.high or a lower
  // memory.max within this share of the value in force is not written. Raises of memory.max
  // and backing memory.high off under pressure always go out at once.
  double hold_band = 0.03;
};

class MemoryController {
 public:
  MemoryController(const policy::ControllerParams& params, const MemoryParams& memory);

  // Sets limits.memory_high_bytes and limits.memory_max_bytes; appends to reason when it acts
  // on pressure or an event.
  void decide(const policy::Observation& o, policy::Limits& limits, std::string& reason);

  double headroom() const { return headroom_; }

 private:
  policy::ControllerParams params_;
  MemoryParams memory_;
  double headroom_;
  double jump_decay_;   // per tick, from the half-lives and the tick
  double max_decay_;
  double largest_jump_ = 0;
  double previous_usage_ = -1;
  double net_ = -1;  // the memory.max wanted, before the hysteresis (-1: not yet known)
};

}  // namespace ebb::learner
