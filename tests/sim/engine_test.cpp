#include <catch2/catch.hpp>

#include <cstring>

#include "sim/policies.h"
#include "sim/synthetic.h"
#include "tests/sim/sim_fixtures.h"

using namespace ebb::sim;
using namespace ebb::sim::testing;
using ebb::policy::Limits;
using ebb::policy::Observation;

namespace {
Script constant(double cores, std::uint64_t memory = 100 * MiB) {
  return {[cores](std::int64_t, int) { return cores; }, [memory](std::int64_t) { return memory; }};
}
}  // namespace

TEST_CASE("slack, waste, memory slack and writes of a fixed limit over steady demand") {
  const auto r = run(workload({scripted(constant(0.5))}, 6), fixed_policy(1.0, 200 * MiB), {});
  const auto& m = r.metrics;
  CHECK(m.relative_slack == Approx(1.0));  // (1 - 0.5) / 0.5
  CHECK(m.waste_p50 == Approx(0.5).epsilon(0.01));
  CHECK(m.waste_p99 == Approx(0.5).epsilon(0.01));
  CHECK(m.throttled_fraction == 0);
  CHECK(m.delay_p99_ms == 0);
  CHECK(m.oom_kills == 0);
  CHECK(m.mem_relative_slack == Approx(1.0));  // (200 - 100) / 100
  // The first decision rewrites cpu.max and memory.max once: 2 writes in 0.1 container-minutes.
  CHECK(m.limit_writes_per_min == Approx(20));
}

TEST_CASE("waste percentiles and slack follow the limit in force during each tick") {
  // Decisions at ticks -1..48 govern ticks 0..49 (limit 1), later ones ticks 50..99 (limit 2).
  auto policy = scripted_policy([](std::int64_t t) { return Limits{t < 49 ? 1.0 : 2.0, std::nullopt, 1024 * MiB}; });
  const auto m = run(workload({scripted(constant(0.5))}, 10), policy, {}).metrics;
  CHECK(m.waste_p50 == Approx(0.5).epsilon(0.01));
  CHECK(m.waste_p99 == Approx(1.5).epsilon(0.01));
  CHECK(m.relative_slack == Approx(2.0));  // (50 x 0.5 + 50 x 1.5) / (100 x 0.5)
  CHECK(m.limit_writes_per_min == Approx(12));  // cpu.max twice in 1/6 container-minute
}

TEST_CASE("a burst above the quota queues into a backlog served in the next period") {
  // 2 cores during tick 0 only, under a 1-core limit: 0.1 core-s of the 0.2 waits.
  Script s{[](std::int64_t t, int) { return t == 0 ? 2.0 : 0.0; }, [](std::int64_t) { return 100 * MiB; }};
  std::vector<Observation> seen;
  const auto m = run(workload({scripted(s)}, 1), fixed_policy(1.0, 1024 * MiB, &seen), {}).metrics;
  CHECK(m.throttled_fraction == Approx(0.5));
  // Work arriving in the last 5 substeps waits 20, 40, ..., 100 ms at 1 core; the p99 unit
  // of work waits 100 ms.
  CHECK(m.delay_p99_ms == Approx(100).epsilon(0.01));
  REQUIRE(seen.size() == 11);
  CHECK(seen[0].first);
  CHECK(seen[1].cpu_usage_cores == Approx(1.0));
  CHECK(seen[1].cpu_throttled_periods == Approx(1.0));
  CHECK(seen[1].cpu_throttled_s_per_s == Approx(0.5));
  CHECK(seen[1].cpu_pressure_some_avg10 > 0);
  CHECK(seen[2].cpu_usage_cores == Approx(1.0));  // the backlog, served once the quota refills
  CHECK(seen[2].cpu_throttled_periods == 0);
  CHECK(seen[3].cpu_usage_cores == 0);
}

TEST_CASE("memory above memory.max is an OOM kill: the container restarts and its demand is lost") {
  std::vector<Observation> seen;
  const auto m = run(workload({scripted(constant(0.5, 300 * MiB))}, 2), fixed_policy(1.0, 200 * MiB, &seen), {}).metrics;
  CHECK(m.oom_kills == 2);  // at 0 s, and again after the 1 s restart
  CHECK(m.throttled_fraction == Approx(1.0));
  CHECK(m.lost_core_s == Approx(1.0));  // 0.5 cores for 2 s
  REQUIRE(seen.size() == 21);
  CHECK(seen[1].oom_kill_events == 1);
  CHECK(seen[1].memory_max_events == 1);
  CHECK(seen[1].memory_current_bytes == 0);
  CHECK(seen[2].oom_kill_events == 0);
  CHECK(seen[11].oom_kill_events == 1);
}

TEST_CASE("memory above memory.high stalls the container in proportion to the excess") {
  std::vector<Observation> seen;
  // 1% over memory.high: 10% of the time stalled in reclaim.
  auto spy = scripted_policy([](std::int64_t) { return Limits{4.0, 100 * MiB, 1024 * MiB}; }, &seen);
  const auto m = run(workload({scripted(constant(1.0, 101 * MiB))}, 1), spy, {}).metrics;
  REQUIRE(seen.size() == 11);
  CHECK(seen[1].memory_high_events == 1);
  CHECK(seen[1].reclaim_stall_s_per_s == Approx(0.1));
  CHECK(seen[1].memory_pressure_some_avg10 > 0);
  CHECK(seen[1].cpu_usage_cores < 0.999);  // the stalled share waits, as a backlog
  CHECK(m.delay_p99_ms > 0);
  CHECK(seen[1].cpu_throttled_periods == 0);  // waiting on reclaim is not CFS throttling
  CHECK(m.throttled_fraction > 0);
  CHECK(m.oom_kills == 0);
}

TEST_CASE("the node's CPUs cap the sum of usage and the excess waits") {
  std::vector<Observation> seen;
  auto unlimited = scripted_policy([](std::int64_t) { return Limits{std::nullopt, std::nullopt, 1024 * MiB}; }, &seen);
  const auto m = run(workload({scripted(constant(2.0)), scripted(constant(2.0))}, 1, 2), unlimited, {}).metrics;
  REQUIRE(seen.size() == 22);
  for (std::size_t i = 2; i < seen.size(); ++i) {
    CHECK(seen[i].cpu_usage_cores == Approx(1.0));
    CHECK(seen[i].cpu_throttled_periods == 0);
  }
  CHECK(m.throttled_fraction > 0.4);
}

TEST_CASE("the oracles see the next tick: peak 10 ms demand, and the least limit CFS needs") {
  std::vector<float> cpu(20, 1.0f);
  cpu[3] = 3.0f;  // tick of 20 substeps, CFS periods of 10
  std::vector<std::uint64_t> memory{123};
  double backlog = 0;
  NextTick next(&cpu, &memory, &backlog, 0, 20, 10);
  CHECK(next.peak_cores() == Approx(3.0));
  CHECK(next.unthrottled_cores() == Approx(1.2));  // (3 + 9) x 10 ms over the first 100 ms
  CHECK(next.memory_bytes() == 123);
  backlog = 0.05;
  CHECK(next.peak_cores() == Approx(3.25));        // 0.05 core-s over 200 ms
  CHECK(next.unthrottled_cores() == Approx(1.7));  // the backlog counts in the first period
}

TEST_CASE("runs are bit-for-bit repeatable for a seed") {
  SyntheticOptions o;
  o.containers = 8;
  o.duration_s = 20;
  auto heuristic = select_policies("ebb-heuristic");
  REQUIRE(heuristic);
  EngineOptions eo;
  eo.plot_containers = {0, 5};
  auto a = run(synthetic_workload("mixed", o), heuristic->front(), eo);
  auto b = run(synthetic_workload("mixed", o), heuristic->front(), eo);
  CHECK(std::memcmp(&a.metrics, &b.metrics, sizeof(Metrics)) == 0);
  REQUIRE(a.plots.size() == 2);
  REQUIRE(a.plots[1].points.size() == b.plots[1].points.size());
  CHECK(std::memcmp(a.plots[1].points.data(), b.plots[1].points.data(), a.plots[1].points.size() * sizeof(PlotPoint)) ==
        0);
  o.seed = 2;
  auto c = run(synthetic_workload("mixed", o), heuristic->front(), eo);
  CHECK(c.metrics.relative_slack != a.metrics.relative_slack);
}

TEST_CASE("no policy without throttling has less slack than the CFS oracle") {
  SyntheticOptions o;
  o.containers = 6;
  o.duration_s = 40;
  auto policies = select_policies("all");
  REQUIRE(policies);
  for (const auto& name : synthetic_kind_names()) {
    const auto w = synthetic_workload(name, o);
    const auto summaries = survey(w, 0.1);
    auto oracle = select_policies("oracle-cfs");
    const auto bound = run(w, oracle->front(), {}, &summaries).metrics;
    CHECK(bound.throttled_fraction == 0);
    CHECK(bound.oom_kills == 0);
    for (const auto& p : *policies) {
      const auto m = run(w, p, {}, &summaries).metrics;
      INFO(name << " / " << p.name << ": slack " << m.relative_slack << ", oracle " << bound.relative_slack);
      if (m.throttled_fraction == 0) CHECK(bound.relative_slack <= m.relative_slack + 1e-9);
    }
  }
}
