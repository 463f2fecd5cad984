#include "manager/allocation/allocation.h"

#include <catch2/catch.hpp>
#include <map>
#include <random>

using namespace ebb::manager;
using ebb::policy::PriorityClass;

namespace {

constexpr double kEps = 1e-9;

std::map<std::pair<std::uint32_t, std::uint32_t>, Share> by_pair(const Allocation& a) {
  std::map<std::pair<std::uint32_t, std::uint32_t>, Share> m;
  for (const auto& s : a.shares) m[{s.group, s.node}] = s;
  return m;
}

AllocationInput random_input(std::mt19937_64& rng, int groups, int nodes, double density) {
  std::uniform_real_distribution<double> u(0, 1);
  AllocationInput in;
  in.params.hysteresis_cpu_cores = 0;
  in.params.hysteresis_fraction = 0;
  for (int g = 0; g < groups; ++g) in.groups.push_back({u(rng) * 20, u(rng) * 64e9, PriorityClass::burstable, 0});
  for (int n = 0; n < nodes; ++n) in.nodes.push_back({1 + u(rng) * 15, 8e9 + u(rng) * 56e9, false});
  for (int g = 0; g < groups; ++g)
    for (int n = 0; n < nodes; ++n)
      if (u(rng) < density)
        in.demands.push_back({static_cast<std::uint32_t>(g), static_cast<std::uint32_t>(n), u(rng) < 0.2 ? 0 : u(rng) * 6,
                              u(rng) * 8e9});
  return in;
}

void check_no_overcommit(const AllocationInput& in, const Allocation& a) {
  std::vector<double> g_cpu(in.groups.size()), g_mem(in.groups.size()), n_cpu(in.nodes.size()), n_mem(in.nodes.size());
  for (const auto& s : a.shares) {
    REQUIRE(s.cpu_cores >= 0);
    REQUIRE(s.memory_bytes >= 0);
    g_cpu[s.group] += s.cpu_cores;
    g_mem[s.group] += s.memory_bytes;
    n_cpu[s.node] += s.cpu_cores;
    n_mem[s.node] += s.memory_bytes;
  }
  for (std::size_t g = 0; g < in.groups.size(); ++g) {
    REQUIRE(g_cpu[g] <= a.effective_cpu_cores[g] * (1 + kEps) + kEps);
    REQUIRE(a.effective_cpu_cores[g] <= in.groups[g].cpu_cores + kEps);
    REQUIRE(g_mem[g] <= in.groups[g].memory_bytes);
  }
  for (std::size_t n = 0; n < in.nodes.size(); ++n) {
    if (in.nodes[n].pinned) continue;
    REQUIRE(n_cpu[n] <= in.nodes[n].cpu_cores - in.params.reserve_cpu_cores + kEps);
    REQUIRE(n_mem[n] <= in.nodes[n].memory_bytes - in.params.reserve_memory_bytes + 1);
  }
}

}  // namespace

TEST_CASE("one group splits its budget by demand, max-min fair") {
  AllocationInput in;
  in.params.spread_surplus = false;
  in.groups = {{6, 0, PriorityClass::burstable, 0}};
  in.nodes = {{16, 0}, {16, 0}, {16, 0}};
  in.demands = {{0, 0, 1, 0}, {0, 1, 4, 0}, {0, 2, 4, 0}};
  auto a = allocate(in);
  REQUIRE(a.ok());
  auto m = by_pair(*a);
  // The small demand is met in full; the two large ones share the rest equally.
  CHECK(m[{0, 0}].cpu_cores == Approx(1));
  CHECK(m[{0, 1}].cpu_cores == Approx(2.5));
  CHECK(m[{0, 2}].cpu_cores == Approx(2.5));
}

TEST_CASE("unused budget is spread as headroom over the group's nodes") {
  AllocationInput in;
  in.groups = {{10, 0, PriorityClass::burstable, 0}};
  in.nodes = {{16, 0}, {3, 0}};
  in.demands = {{0, 0, 1, 0}, {0, 1, 1, 0}};
  auto m = by_pair(allocate(in).value());
  // 8 cores left: node 1 can take only 2 more (capacity 3), node 0 gets the remaining 6.
  CHECK(m[{0, 0}].cpu_cores == Approx(7));
  CHECK(m[{0, 1}].cpu_cores == Approx(3));
}

TEST_CASE("node capacity and the reserve bound the shares of all groups on a node") {
  AllocationInput in;
  in.params.reserve_cpu_cores = 1;
  in.params.spread_surplus = false;
  in.groups = {{8, 0, PriorityClass::burstable, 0}, {8, 0, PriorityClass::burstable, 0}};
  in.nodes = {{5, 0}, {16, 0}};
  in.demands = {{0, 0, 4, 0}, {1, 0, 4, 0}, {1, 1, 2, 0}};
  auto m = by_pair(allocate(in).value());
  CHECK(m[{0, 0}].cpu_cores == Approx(2));  // node 0 has 4 usable cores for 8 wanted
  CHECK(m[{1, 0}].cpu_cores == Approx(2));
  CHECK(m[{1, 1}].cpu_cores == Approx(2));
}

TEST_CASE("random inputs: no overcommit, capacity respected, max-min fair") {
  std::mt19937_64 rng(GENERATE(1, 2, 3, 4, 5, 6, 7, 8));
  auto in = random_input(rng, 12, 30, 0.3);
  in.params.reserve_cpu_cores = 0.5;
  in.params.reserve_memory_bytes = 1e9;
  in.params.spread_surplus = GENERATE(false, true);
  auto a = allocate(in);
  REQUIRE(a.ok());
  check_no_overcommit(in, *a);
  if (in.params.spread_surplus) return;

  // Max-min fairness, as the bottleneck property: a pair that got less than its demand sits on
  // a saturated group or node in which no other pair got more than it.
  std::vector<double> g_cpu(in.groups.size()), n_cpu(in.nodes.size()), g_max(in.groups.size()), n_max(in.nodes.size());
  for (const auto& s : a->shares) {
    g_cpu[s.group] += s.cpu_cores;
    n_cpu[s.node] += s.cpu_cores;
    g_max[s.group] = std::max(g_max[s.group], s.cpu_cores);
    n_max[s.node] = std::max(n_max[s.node], s.cpu_cores);
  }
  auto m = by_pair(*a);
  for (const auto& d : in.demands) {
    const double got = m[{d.group, d.node}].cpu_cores;
    REQUIRE(got <= d.cpu_cores + kEps);
    if (got >= d.cpu_cores - 1e-7) continue;
    const bool group_bottleneck = g_cpu[d.group] >= in.groups[d.group].cpu_cores - 1e-7 && got >= g_max[d.group] - 1e-7;
    const bool node_bottleneck =
        n_cpu[d.node] >= in.nodes[d.node].cpu_cores - in.params.reserve_cpu_cores - 1e-7 && got >= n_max[d.node] - 1e-7;
    INFO("group " << d.group << " node " << d.node << " got " << got << " of " << d.cpu_cores);
    REQUIRE((group_bottleneck || node_bottleneck));
  }
}

TEST_CASE("progressive fill meets every cap when the rooms are large") {
  std::vector<FillPair> pairs = {{0, 0, 1}, {0, 1, 2}, {1, 1, 3}};
  std::vector<double> groups = {100, 100}, nodes = {100, 100};
  auto v = progressive_fill(pairs, groups, nodes);
  CHECK(v == std::vector<double>{1, 2, 3});
}

TEST_CASE("a pinned node keeps its previous shares and they count first") {
  AllocationInput in;
  in.params.spread_surplus = false;
  in.groups = {{4, 0, PriorityClass::burstable, 0}};
  in.nodes = {{16, 0, true}, {16, 0, false}};
  in.previous = {{0, 0, 3, 0}, {0, 1, 1, 0}};
  in.demands = {{0, 0, 0.1, 0}, {0, 1, 4, 0}};  // node 0's stale demand is ignored
  auto m = by_pair(allocate(in).value());
  CHECK(m[{0, 0}].cpu_cores == 3);
  CHECK(m[{0, 1}].cpu_cores == Approx(1));
  // Once the lease ends (node no longer listed with a share), node 1 gets the budget.
  in.nodes[0].pinned = false;
  in.demands = {{0, 1, 4, 0}};
  in.previous = {{0, 1, 1, 0}};
  m = by_pair(allocate(in).value());
  CHECK(m.count({0, 0}) == 0);
  CHECK(m[{0, 1}].cpu_cores == Approx(4));
}

TEST_CASE("hysteresis keeps small changes out, never at the price of overcommit") {
  AllocationInput in;
  in.params.spread_surplus = false;
  in.params.hysteresis_cpu_cores = 0.2;
  in.groups = {{4, 0, PriorityClass::burstable, 0}};
  in.nodes = {{16, 0}, {16, 0}};
  in.previous = {{0, 0, 2, 0}, {0, 1, 2, 0}};
  in.demands = {{0, 0, 1.9, 0}, {0, 1, 2.1, 0}};
  auto m = by_pair(allocate(in).value());
  // 1.9 is within 0.2 of 2 and kept at 2; 2.1 would be kept at 2 too; both fit.
  CHECK(m[{0, 0}].cpu_cores == 2);
  CHECK(m[{0, 1}].cpu_cores == 2);

  // The budget drops: keeping node 0's 2 cores would overcommit, so the group takes new values.
  in.groups[0].cpu_cores = 3.9;
  in.demands = {{0, 0, 2, 0}, {0, 1, 2, 0}};
  auto a = allocate(in).value();
  check_no_overcommit(in, a);
  m = by_pair(a);
  CHECK(m[{0, 0}].cpu_cores == Approx(1.95));

  // A large change goes through at once.
  in.groups[0].cpu_cores = 4;
  in.previous = {{0, 0, 2, 0}, {0, 1, 2, 0}};
  in.demands = {{0, 0, 0.5, 0}, {0, 1, 3.5, 0}};
  m = by_pair(allocate(in).value());
  CHECK(m[{0, 0}].cpu_cores == Approx(0.5));
  CHECK(m[{0, 1}].cpu_cores == Approx(3.5));
}

TEST_CASE("cluster cap shrinks best-effort first, then burstable, never guaranteed below its floor") {
  AllocationInput in;
  in.params.spread_surplus = false;
  in.groups = {{4, 0, PriorityClass::guaranteed, 3},
               {4, 0, PriorityClass::burstable, 0},
               {4, 0, PriorityClass::best_effort, 0}};
  in.nodes = {{32, 0}};
  in.demands = {{0, 0, 4, 0}, {1, 0, 4, 0}, {2, 0, 4, 0}};

  in.cluster_cap_cpu_cores = 10;
  auto a = allocate(in).value();
  CHECK(a.effective_cpu_cores[0] == Approx(4));
  CHECK(a.effective_cpu_cores[1] == Approx(4));
  CHECK(a.effective_cpu_cores[2] == Approx(2));
  check_no_overcommit(in, a);

  in.cluster_cap_cpu_cores = 6;
  a = allocate(in).value();
  CHECK(a.effective_cpu_cores[0] == Approx(4));
  CHECK(a.effective_cpu_cores[1] == Approx(2));
  CHECK(a.effective_cpu_cores[2] == Approx(0));

  in.cluster_cap_cpu_cores = 2;  // below the guaranteed floor: the floor still wins over others
  a = allocate(in).value();
  CHECK(a.effective_cpu_cores[0] == Approx(2));
  CHECK(a.effective_cpu_cores[1] == Approx(0));

  // A cap above the total leaves every budget whole, idle groups included.
  in.cluster_cap_cpu_cores = 100;
  in.demands = {{0, 0, 1, 0}};
  a = allocate(in).value();
  CHECK(a.effective_cpu_cores == std::vector<double>{4, 4, 4});
}

TEST_CASE("bad input is an error") {
  AllocationInput in;
  in.groups = {{1, 0, PriorityClass::burstable, 0}};
  in.nodes = {{1, 0}};
  in.demands = {{0, 1, 1, 0}};
  CHECK_FALSE(allocate(in).ok());
  in.demands = {{0, 0, -1, 0}};
  CHECK_FALSE(allocate(in).ok());
  in.demands = {{0, 0, 1, 0}, {0, 0, 1, 0}};
  CHECK_FALSE(allocate(in).ok());
  in.demands = {};
  in.groups[0].cpu_cores = std::nan("");
  CHECK_FALSE(allocate(in).ok());
}
