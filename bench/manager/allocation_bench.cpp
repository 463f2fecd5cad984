// The allocation round alone at cluster scale: NODES nodes, GROUPS groups, each node running
// GROUPS_PER_NODE of them, random demands, the previous round's shares fed back (hysteresis on,
// as in the manager). Prints the median and the slowest of RUNS rounds; exits 1 when the median
// is above --limit-ms, so ctest can hold the 100 ms bound.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include <CLI/CLI.hpp>

#include "manager/allocation/allocation.h"

int main(int argc, char** argv) {
  CLI::App app{"manager_allocation_bench"};
  int nodes = 10000, groups = 100, groups_per_node = 5, runs = 11;
  double limit_ms = 100;
  app.add_option("--nodes", nodes);
  app.add_option("--groups", groups);
  app.add_option("--groups-per-node", groups_per_node);
  app.add_option("--runs", runs);
  app.add_option("--limit-ms", limit_ms, "fail when the median round takes longer");
  CLI11_PARSE(app, argc, argv);

  using namespace ebb::manager;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0, 1);
  AllocationInput in;
  in.params.reserve_cpu_cores = 0.5;
  for (int g = 0; g < groups; ++g)
    in.groups.push_back({200 + 400 * u(rng), 2e12, static_cast<ebb::policy::PriorityClass>(g % 3), 10});
  for (int n = 0; n < nodes; ++n) in.nodes.push_back({32, 128e9, u(rng) < 0.01});
  for (int n = 0; n < nodes; ++n)
    for (int k = 0; k < groups_per_node; ++k)
      in.demands.push_back({static_cast<std::uint32_t>((n * 7 + k * 13) % groups), static_cast<std::uint32_t>(n),
                            u(rng) * 8, u(rng) * 16e9});
  in.cluster_cap_cpu_cores = 0.8 * nodes * 32;

  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    for (auto& d : in.demands) d.cpu_cores = std::max(0.0, d.cpu_cores + (u(rng) - 0.5));
    const auto start = std::chrono::steady_clock::now();
    auto out = allocate(in);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (!out) {
      std::fprintf(stderr, "allocate: %s\n", out.error().message.c_str());
      return 1;
    }
    in.previous = std::move(out->shares);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  std::printf("allocate: %d nodes, %d groups, %zu (group, node) pairs: median %.1f ms, max %.1f ms over %d rounds\n",
              nodes, groups, in.demands.size(), median, ms.back(), runs);
  return median <= limit_ms ? 0 : 1;
}
