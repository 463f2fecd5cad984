// Cost of one decision and of one tick over 1,000 containers (issue 5: <= 2 us per container,
// <= 2 ms per tick of 1,000). Run: build/bin/learner_bench; docs/learner.md has the figures.
#include <benchmark/benchmark.h>

#include <memory>

#include "bench/learner/workload.h"
#include "daemon/arbitration/arbitration.h"
#include "daemon/learner/learner.h"
#include "daemon/policy/heuristic.h"

namespace {

using ebb::policy::ContainerController;
using ebb::policy::ControllerFactory;

// Warm controllers: past the learner's cold start, so the timed ticks take the learner's path.
std::vector<std::unique_ptr<ContainerController>> warm(const ControllerFactory& factory, const ebb::bench::Fleet& f) {
  std::vector<std::unique_ptr<ContainerController>> cs;
  for (const auto& ring : f.rings) {
    cs.push_back(factory(f.params));
    for (int t = 0; t < 2 * ebb::bench::kRing; ++t) benchmark::DoNotOptimize(cs.back()->decide(ring[t % ebb::bench::kRing]));
  }
  return cs;
}

void decide_per_container(benchmark::State& state, const ControllerFactory& factory) {
  const auto fleet = ebb::bench::make_fleet(1, 1);
  auto cs = warm(factory, fleet);
  std::size_t t = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cs[0]->decide(fleet.rings[0][t++ % ebb::bench::kRing]));
  state.SetItemsProcessed(state.iterations());
}

void tick(benchmark::State& state, const ControllerFactory& factory) {
  const int n = static_cast<int>(state.range(0));
  const auto fleet = ebb::bench::make_fleet(n, 2);
  auto cs = warm(factory, fleet);
  std::size_t t = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < cs.size(); ++i) benchmark::DoNotOptimize(cs[i]->decide(fleet.rings[i][t % ebb::bench::kRing]));
    ++t;
  }
  state.SetItemsProcessed(state.iterations() * n);
}

void BM_LearnerDecide(benchmark::State& s) { decide_per_container(s, ebb::learner::learner_factory()); }
void BM_HeuristicDecide(benchmark::State& s) { decide_per_container(s, ebb::policy::heuristic_factory()); }
void BM_LearnerTick(benchmark::State& s) { tick(s, ebb::learner::learner_factory()); }

// Arbitration of a tick's decisions over the node: 1,000 claims in three classes, oversubscribed.
void BM_ArbitrateTick(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<ebb::arbitration::Claim> claims(n);
  double wanted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    claims[i].wanted_cores = 0.1 + static_cast<double>(i % 37) * 0.1;
    claims[i].floor_cores = i % 3 == 0 ? 0.5 : 0;
    claims[i].weight = 1 + static_cast<double>(i % 5);
    claims[i].priority = static_cast<ebb::policy::PriorityClass>(i % 3);
    wanted += claims[i].wanted_cores;
  }
  for (auto _ : state) benchmark::DoNotOptimize(ebb::arbitration::arbitrate(claims, wanted * 0.6));
}

}  // namespace

BENCHMARK(BM_LearnerDecide);
BENCHMARK(BM_HeuristicDecide);
BENCHMARK(BM_LearnerTick)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ArbitrateTick)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
