#pragma once
// Node arbitration: when the containers together want more CPU than the node (or the budget a
// manager assigned it) can give, split it by priority class and weight with max-min fairness.
//
// Order of service: every guaranteed floor, then the burstable floors, then the best-effort
// floors, then the guaranteed wants, the burstable wants, and last the best-effort wants. Inside
// one step the capacity left is water-filled: each claim rises in proportion to its weight until
// it has what it asked for or the capacity is gone, so best-effort shrinks first and a
// guaranteed container keeps its floor as long as the guaranteed floors fit at all.
#include <span>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/policy/policy.h"

namespace ebb::arbitration {

struct Claim {
  double wanted_cores = 0;   // what the container's controller decided
  double floor_cores = 0;    // served before any want (a guaranteed container's request)
  double weight = 1;         // share of the water-fill inside the class; > 0
  policy::PriorityClass priority = policy::PriorityClass::burstable;
};

// grants[i] answers claims[i]: 0 <= grants[i] <= wanted_cores, and the grants sum to at most
// capacity_cores (to exactly min(capacity, total wanted) up to rounding). Errors on a negative or
// non-finite number, or a weight that is not positive.
Result<std::vector<double>> arbitrate(std::span<const Claim> claims, double capacity_cores);

}  // namespace ebb::arbitration
