#pragma once
// One allocation round of ebb-manager, as a pure function: groups (cluster-wide budgets), nodes
// (capacities) and per-(group, node) demand in; per-(group, node) shares out.
//
// CPU and memory are split the same way, independently: every (group, node) pair that has
// demand rises at the same rate (max-min fairness, progressive filling) until it has its
// demand, its group's budget is spent or its node's usable capacity (capacity minus the
// reserve) is full. Budget a group still has after every demand is met is spread the same way,
// as headroom, over the nodes that run the group. A cluster-wide CPU cap first shrinks the
// groups' effective budgets by priority class (best-effort first, then burstable, guaranteed
// never below its floor), through the node arbitration's water-filling.
//
// Invariants (tested): per group, the shares sum to at most its (effective) budget; per node,
// to at most its usable capacity; a pinned node (disconnected, within its lease) keeps its
// previous shares exactly and they count against the budget first.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/policy/policy.h"

namespace ebb::manager {

struct GroupBudget {
  double cpu_cores = 0;
  double memory_bytes = 0;
  policy::PriorityClass priority = policy::PriorityClass::burstable;
  double floor_cpu_cores = 0;  // guaranteed groups keep this much under a cluster cap
};

struct NodeCapacity {
  double cpu_cores = 0;
  double memory_bytes = 0;
  bool pinned = false;  // keeps its previous shares (disconnected, lease not over)
};

// Indices into AllocationInput::groups and ::nodes.
struct Demand {
  std::uint32_t group = 0;
  std::uint32_t node = 0;
  double cpu_cores = 0;
  double memory_bytes = 0;
};

struct Share {
  std::uint32_t group = 0;
  std::uint32_t node = 0;
  double cpu_cores = 0;
  double memory_bytes = 0;
};

struct AllocationParams {
  double reserve_cpu_cores = 0;       // per node, never allocated to groups
  double reserve_memory_bytes = 0;
  bool spread_surplus = true;         // hand out unused budget as headroom
  // A share moves only when it changes by more than max(cores, fraction x previous): small
  // oscillations of demand do not rewrite every node's limits each round.
  double hysteresis_cpu_cores = 0.05;
  double hysteresis_fraction = 0.05;
};

struct AllocationInput {
  std::vector<GroupBudget> groups;
  std::vector<NodeCapacity> nodes;
  std::vector<Demand> demands;       // at most one per (group, node)
  std::vector<Share> previous;       // last round's shares; at most one per (group, node)
  std::optional<double> cluster_cap_cpu_cores;
  AllocationParams params;
};

struct Allocation {
  // One per (group, node) with demand or a pinned previous share, sorted by (group, node).
  std::vector<Share> shares;
  std::vector<double> effective_cpu_cores;  // per group: its budget after the cluster cap
};

// Errors on an index out of range, a duplicate pair, or a negative or non-finite number.
Result<Allocation> allocate(const AllocationInput& input);

// Max-min fair progressive filling, the core of allocate(): pair i rises with the others until
// it reaches caps[i], or the room of its group or of its node is used up. Exposed for tests.
struct FillPair {
  std::uint32_t group = 0;
  std::uint32_t node = 0;
  double cap = 0;
};
std::vector<double> progressive_fill(std::span<const FillPair> pairs, std::span<const double> group_room,
                                     std::span<const double> node_room);

}  // namespace ebb::manager
