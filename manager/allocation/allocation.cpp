#include "manager/allocation/allocation.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <queue>

#include "daemon/arbitration/arbitration.h"

namespace ebb::manager {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A shared limit (a group's budget or a node's room) during progressive filling. Its members
// are members[begin, end) of one flat array (fewer allocations at 10,000 nodes).
struct Limit {
  double room = 0;
  double frozen_sum = 0;
  std::uint32_t active = 0;
  std::uint32_t version = 0;
  std::uint32_t begin = 0, end = 0;
  bool exhausted = false;
};

// Scales every limit's members down to its room: rounding in the fill may leave a sum an ulp
// over, and the budget is a hard bound.
void clamp_to_rooms(std::span<const Limit> limits, std::span<const std::uint32_t> members, std::span<const FillPair> pairs,
                    std::vector<double>& value) {
  for (const auto& limit : limits) {
    double sum = 0;
    for (auto m = limit.begin; m < limit.end; ++m) sum += value[members[m]];
    if (sum <= limit.room || sum <= 0) continue;
    const double scale = limit.room / sum;
    for (auto m = limit.begin; m < limit.end; ++m) value[members[m]] = std::min(value[members[m]] * scale, pairs[members[m]].cap);
  }
}

std::uint64_t pair_key(std::uint32_t group, std::uint32_t node) { return (std::uint64_t{group} << 32) | node; }

bool bad_number(double x) { return !std::isfinite(x) || x < 0; }

Status validate(const AllocationInput& in) {
  auto fail = [](std::string what) { return Status(Error{std::move(what)}); };
  for (std::size_t g = 0; g < in.groups.size(); ++g) {
    const auto& b = in.groups[g];
    if (bad_number(b.cpu_cores) || bad_number(b.memory_bytes) || bad_number(b.floor_cpu_cores))
      return fail("group " + std::to_string(g) + ": budget must be finite and >= 0");
  }
  for (std::size_t n = 0; n < in.nodes.size(); ++n)
    if (bad_number(in.nodes[n].cpu_cores) || bad_number(in.nodes[n].memory_bytes))
      return fail("node " + std::to_string(n) + ": capacity must be finite and >= 0");
  if (bad_number(in.params.reserve_cpu_cores) || bad_number(in.params.reserve_memory_bytes) ||
      bad_number(in.params.hysteresis_cpu_cores) || bad_number(in.params.hysteresis_fraction))
    return fail("allocation parameters must be finite and >= 0");
  if (in.cluster_cap_cpu_cores && bad_number(*in.cluster_cap_cpu_cores))
    return fail("cluster cap must be finite and >= 0");
  auto check_pairs = [&](const auto& list, const char* what) -> Status {
    std::vector<std::uint64_t> keys;
    keys.reserve(list.size());
    for (const auto& d : list) {
      if (d.group >= in.groups.size() || d.node >= in.nodes.size())
        return fail(std::string(what) + ": group or node index out of range");
      if (bad_number(d.cpu_cores) || bad_number(d.memory_bytes))
        return fail(std::string(what) + ": amounts must be finite and >= 0");
      keys.push_back(pair_key(d.group, d.node));
    }
    std::sort(keys.begin(), keys.end());
    if (std::adjacent_find(keys.begin(), keys.end()) != keys.end())
      return fail(std::string(what) + ": duplicate (group, node) pair");
    return ok_status();
  };
  if (auto s = check_pairs(in.demands, "demand"); !s) return s;
  return check_pairs(in.previous, "previous share");
}

// The groups' CPU budgets under the cluster cap: first every group's demand (up to its budget)
// by priority class, guaranteed floors first; what the cap still allows then raises the groups
// toward their full budgets in the same order.
std::vector<double> effective_cpu_budgets(const AllocationInput& in, std::span<const double> cpu_wanted) {
  std::vector<double> budgets(in.groups.size());
  for (std::size_t g = 0; g < in.groups.size(); ++g) budgets[g] = in.groups[g].cpu_cores;
  if (!in.cluster_cap_cpu_cores) return budgets;

  std::vector<arbitration::Claim> claims(in.groups.size());
  for (std::size_t g = 0; g < in.groups.size(); ++g) {
    const auto& b = in.groups[g];
    auto& c = claims[g];
    c.wanted_cores = std::min(b.cpu_cores, cpu_wanted[g]);
    c.floor_cores = b.priority == policy::PriorityClass::guaranteed ? std::min(b.floor_cpu_cores, c.wanted_cores) : 0;
    // Inside a class, larger budgets give up proportionally more.
    c.weight = std::max(b.cpu_cores, 1e-9);
    c.priority = b.priority;
  }
  // Inputs were validated, so arbitration cannot fail.
  auto first = arbitration::arbitrate(claims, *in.cluster_cap_cpu_cores);
  std::vector<double> granted = first.value();
  double left = *in.cluster_cap_cpu_cores;
  for (double x : granted) left -= x;
  if (left > 0) {
    for (std::size_t g = 0; g < claims.size(); ++g) {
      claims[g].wanted_cores = std::max(0.0, budgets[g] - granted[g]);
      claims[g].floor_cores = 0;
    }
    auto second = arbitration::arbitrate(claims, left).value();
    for (std::size_t g = 0; g < granted.size(); ++g) granted[g] += second[g];
  }
  for (std::size_t g = 0; g < budgets.size(); ++g) budgets[g] = std::min(budgets[g], granted[g]);
  return budgets;
}

// Demand first, then (optionally) the rest of each group's room as headroom.
std::vector<double> fill_resource(std::vector<FillPair>& pairs, std::vector<double> group_room,
                                  std::vector<double> node_room, bool spread_surplus) {
  auto value = progressive_fill(pairs, group_room, node_room);
  if (!spread_surplus) return value;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    group_room[pairs[i].group] = std::max(0.0, group_room[pairs[i].group] - value[i]);
    node_room[pairs[i].node] = std::max(0.0, node_room[pairs[i].node] - value[i]);
    pairs[i].cap = kInf;
  }
  auto extra = progressive_fill(pairs, group_room, node_room);
  for (std::size_t i = 0; i < pairs.size(); ++i) value[i] += extra[i];
  return value;
}

// Keeps a previous share where the new one differs by less than the threshold, as long as the
// kept values still fit every group's and node's room; where they do not, that group's or
// node's pairs take their new values (the all-new allocation fits, so this ends).
void apply_hysteresis(std::span<const FillPair> pairs, std::span<const double> previous, std::span<const double> group_room,
                      std::span<const double> node_room, double abs_threshold, double fraction,
                      std::vector<double>& value) {
  std::vector<double> fresh = value;
  std::vector<char> held(pairs.size(), 0);
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (previous[i] < 0) continue;  // no previous share
    if (std::abs(value[i] - previous[i]) <= std::max(abs_threshold, fraction * previous[i])) {
      value[i] = previous[i];
      held[i] = 1;
    }
  }
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<double> group_sum(group_room.size(), 0), node_sum(node_room.size(), 0);
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      group_sum[pairs[i].group] += value[i];
      node_sum[pairs[i].node] += value[i];
    }
    for (std::size_t i = 0; i < pairs.size(); ++i) {
      if (!held[i]) continue;
      if (group_sum[pairs[i].group] > group_room[pairs[i].group] || node_sum[pairs[i].node] > node_room[pairs[i].node]) {
        value[i] = fresh[i];
        held[i] = 0;
        changed = true;
      }
    }
  }
}

}  // namespace

std::vector<double> progressive_fill(std::span<const FillPair> pairs, std::span<const double> group_room,
                                     std::span<const double> node_room) {
  const auto n_pairs = static_cast<std::uint32_t>(pairs.size());
  std::vector<double> value(n_pairs, 0);
  std::vector<char> frozen(n_pairs, 0);
  // limits[0, G) are groups, limits[G, G + N) nodes.
  const std::size_t n_groups = group_room.size();
  std::vector<Limit> limits(n_groups + node_room.size());
  for (std::size_t g = 0; g < n_groups; ++g) limits[g].room = std::max(0.0, group_room[g]);
  for (std::size_t n = 0; n < node_room.size(); ++n) limits[n_groups + n].room = std::max(0.0, node_room[n]);
  auto limits_of = [&](std::uint32_t i) {
    return std::array<std::size_t, 2>{pairs[i].group, n_groups + pairs[i].node};
  };
  for (std::uint32_t i = 0; i < n_pairs; ++i)
    for (auto l : limits_of(i)) ++limits[l].active;
  std::uint32_t offset = 0;
  for (auto& limit : limits) {
    limit.begin = limit.end = offset;
    offset += limit.active;
  }
  std::vector<std::uint32_t> members(offset);
  for (std::uint32_t i = 0; i < n_pairs; ++i)
    for (auto l : limits_of(i)) members[limits[l].end++] = i;

  // Every active pair sits at the current level; a limit runs out when its active members reach
  // (room - frozen) / active, a pair stops at its cap. Events are taken in level order.
  struct Event {
    double level;
    std::uint32_t limit;
    std::uint32_t version;
    bool operator>(const Event& o) const { return level > o.level; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events;
  double level = 0;
  auto schedule = [&](std::size_t l) {
    const auto& limit = limits[l];
    if (limit.active == 0 || limit.exhausted) return;
    events.push({std::max(level, (limit.room - limit.frozen_sum) / limit.active), static_cast<std::uint32_t>(l),
                 limit.version});
  };
  for (std::size_t l = 0; l < limits.size(); ++l) schedule(l);

  // Pairs in cap order; with no finite cap (the headroom pass) only limits stop them.
  std::vector<std::pair<double, std::uint32_t>> by_cap;
  for (std::uint32_t i = 0; i < n_pairs; ++i)
    if (pairs[i].cap < kInf) by_cap.emplace_back(pairs[i].cap, i);
  std::sort(by_cap.begin(), by_cap.end());

  std::size_t remaining = n_pairs, next_cap = 0;
  auto freeze = [&](std::uint32_t i, double v) {
    frozen[i] = 1;
    value[i] = v;
    --remaining;
    for (auto l : limits_of(i)) {
      auto& limit = limits[l];
      limit.frozen_sum += v;
      --limit.active;
      ++limit.version;
      schedule(l);
    }
  };
  while (remaining > 0) {
    while (next_cap < by_cap.size() && frozen[by_cap[next_cap].second]) ++next_cap;
    while (!events.empty() && events.top().version != limits[events.top().limit].version) events.pop();
    const double cap_level = next_cap < by_cap.size() ? by_cap[next_cap].first : kInf;
    const double limit_level = events.empty() ? kInf : events.top().level;
    if (cap_level <= limit_level) {
      level = std::max(level, cap_level);
      freeze(by_cap[next_cap++].second, cap_level);
      continue;
    }
    const auto l = events.top().limit;
    events.pop();
    level = limit_level;
    limits[l].exhausted = true;  // its members freeze now; no need to schedule it again
    for (auto m = limits[l].begin; m < limits[l].end; ++m)
      if (!frozen[members[m]]) freeze(members[m], level);
  }
  clamp_to_rooms(limits, members, pairs, value);
  return value;
}

Result<Allocation> allocate(const AllocationInput& in) {
  if (auto s = validate(in); !s) return s.error();
  const std::size_t n_groups = in.groups.size(), n_nodes = in.nodes.size();
  const auto& p = in.params;

  Allocation out;
  std::vector<double> group_cpu_room(n_groups), group_mem_room(n_groups), cpu_wanted(n_groups, 0);
  std::vector<Share> pinned;
  std::vector<std::pair<std::uint64_t, const Share*>> previous;  // sorted by pair key
  previous.reserve(in.previous.size());
  for (const auto& s : in.previous) {
    if (in.nodes[s.node].pinned) {
      pinned.push_back(s);
      cpu_wanted[s.group] += s.cpu_cores;
    } else {
      previous.emplace_back(pair_key(s.group, s.node), &s);
    }
  }
  std::sort(previous.begin(), previous.end());
  auto previous_of = [&](const Demand& d) -> const Share* {
    const auto key = pair_key(d.group, d.node);
    auto it = std::lower_bound(previous.begin(), previous.end(), std::pair<std::uint64_t, const Share*>(key, nullptr));
    return it != previous.end() && it->first == key ? it->second : nullptr;
  };

  std::vector<FillPair> cpu_pairs, mem_pairs;
  std::vector<double> prev_cpu, prev_mem;
  for (const auto& d : in.demands) {
    if (in.nodes[d.node].pinned) continue;  // its stale demand no longer counts; its share does
    cpu_pairs.push_back({d.group, d.node, d.cpu_cores});
    mem_pairs.push_back({d.group, d.node, d.memory_bytes});
    cpu_wanted[d.group] += d.cpu_cores;
    const Share* before = previous_of(d);
    prev_cpu.push_back(before ? before->cpu_cores : -1);
    prev_mem.push_back(before ? before->memory_bytes : -1);
  }

  out.effective_cpu_cores = effective_cpu_budgets(in, cpu_wanted);
  for (std::size_t g = 0; g < n_groups; ++g) {
    group_cpu_room[g] = out.effective_cpu_cores[g];
    group_mem_room[g] = in.groups[g].memory_bytes;
  }
  for (const auto& s : pinned) {
    group_cpu_room[s.group] = std::max(0.0, group_cpu_room[s.group] - s.cpu_cores);
    group_mem_room[s.group] = std::max(0.0, group_mem_room[s.group] - s.memory_bytes);
  }
  std::vector<double> node_cpu_room(n_nodes), node_mem_room(n_nodes);
  for (std::size_t n = 0; n < n_nodes; ++n) {
    node_cpu_room[n] = std::max(0.0, in.nodes[n].cpu_cores - p.reserve_cpu_cores);
    node_mem_room[n] = std::max(0.0, in.nodes[n].memory_bytes - p.reserve_memory_bytes);
  }

  auto cpu = fill_resource(cpu_pairs, group_cpu_room, node_cpu_room, p.spread_surplus);
  auto mem = fill_resource(mem_pairs, group_mem_room, node_mem_room, p.spread_surplus);
  apply_hysteresis(cpu_pairs, prev_cpu, group_cpu_room, node_cpu_room, p.hysteresis_cpu_cores,
                   p.hysteresis_fraction, cpu);
  apply_hysteresis(mem_pairs, prev_mem, group_mem_room, node_mem_room, 0, p.hysteresis_fraction, mem);

  out.shares = std::move(pinned);
  for (std::size_t i = 0; i < cpu_pairs.size(); ++i)
    out.shares.push_back({cpu_pairs[i].group, cpu_pairs[i].node, cpu[i], std::floor(mem[i])});
  std::sort(out.shares.begin(), out.shares.end(), [](const Share& a, const Share& b) {
    return pair_key(a.group, a.node) < pair_key(b.group, b.node);
  });
  return out;
}

}  // namespace ebb::manager
