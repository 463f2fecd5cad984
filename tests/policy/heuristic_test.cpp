#include <catch2/catch.hpp>

#include "daemon/policy/heuristic.h"

using namespace ebb::policy;

namespace {

ControllerParams node_params() {
  ControllerParams p;
  p.node_cpu_cores = 4;
  p.node_memory_bytes = 8ull << 30;
  p.bounds.cpu_min_cores = 0.1;
  return p;
}

Observation steady(double usage, std::optional<double> limit) {
  Observation o;
  o.interval_s = 0.2;
  o.cpu_usage_cores = usage;
  o.cpu_limit_cores = limit;
  o.memory_current_bytes = 100ull << 20;
  o.memory_working_set_bytes = 80ull << 20;
  o.memory_high_bytes = 200ull << 20;
  o.memory_max_bytes = 400ull << 20;
  return o;
}

constexpr std::uint64_t MiB = 1ull << 20;

}  // namespace

TEST_CASE("a throttled container gets its CPU limit raised at once") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 0.1);
  o.cpu_throttled_periods = 0.9;
  auto d = c.decide(o);
  REQUIRE(d.limits.cpu_cores);
  CHECK(*d.limits.cpu_cores >= 0.15);
  CHECK(*d.limits.cpu_cores <= 0.1 * 3.0 + 0.05 + 1e-9);  // per-tick step limit
  CHECK_THAT(d.reason, Catch::StartsWith("cpu throttled in 90% of periods: raise to 0.15 cores"));
}

TEST_CASE("a starvation event raises the limit even before throttling shows in cpu.stat") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 0.1);
  o.starving = true;
  CHECK(*c.decide(o).limits.cpu_cores > 0.1);
}

TEST_CASE("the CPU limit never exceeds the ceiling") {
  auto p = node_params();
  p.bounds.cpu_max_cores = 2;
  HeuristicController c(p);
  auto o = steady(1.9, 1.9);
  o.cpu_throttled_periods = 1.0;
  CHECK(*c.decide(o).limits.cpu_cores == Approx(2.0));
}

TEST_CASE("slack lowers the limit only after it persists, and gradually, down to the floor") {
  HeuristicController c(node_params());
  double limit = 4.0;
  std::vector<double> history;
  for (int tick = 0; tick < 40; ++tick) {
    auto d = c.decide(steady(0.0, limit));
    if (tick == 2) CHECK_THAT(d.reason, Catch::StartsWith("cpu slack: usage 0.00 cores, lower to 2.80"));
    history.push_back(*d.limits.cpu_cores);
    limit = *d.limits.cpu_cores;
  }
  CHECK(history[0] == Approx(4.0));  // one slack tick is not yet a trend
  CHECK(history[1] == Approx(4.0));
  CHECK(history[2] == Approx(4.0 * 0.7));
  for (std::size_t i = 1; i < history.size(); ++i) CHECK(history[i] >= history[i - 1] * 0.7 - 1e-9);
  CHECK(history.back() == Approx(0.1));
}

TEST_CASE("an idle container at 'max' reaches its floor within 5 s of 200 ms ticks") {
  HeuristicController c(node_params());
  std::optional<double> limit;  // cpu.max "max"
  int ticks = 0;
  while (ticks < 25 && (!limit || *limit > 0.1 + 1e-9)) {
    limit = c.decide(steady(0.0, limit)).limits.cpu_cores;
    ++ticks;
  }
  CHECK(ticks < 25);
}

TEST_CASE("memory.max is never set below usage plus a margin, and rises before usage reaches it") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 1.0);
  o.memory_max_bytes = 100 * MiB;
  o.memory_high_bytes = 90 * MiB;
  o.memory_current_bytes = 85 * MiB;
  o.memory_working_set_bytes = 85 * MiB;
  auto d = c.decide(o);
  CHECK(*d.limits.memory_max_bytes >= 85 * MiB + 64 * MiB);
  CHECK(*d.limits.memory_high_bytes <= *d.limits.memory_max_bytes);
  CHECK(*d.limits.memory_high_bytes > 85 * MiB);
}

TEST_CASE("a growing working set never meets memory.max when ticks keep up") {
  HeuristicController c(node_params());
  std::uint64_t max = 100 * MiB, high = 100 * MiB;
  for (std::uint64_t usage = 50 * MiB; usage <= 300 * MiB; usage += 10 * MiB) {  // 50 MB/s at 200 ms
    auto o = steady(0.1, 1.0);
    o.memory_current_bytes = o.memory_working_set_bytes = usage;
    o.memory_max_bytes = max;
    o.memory_high_bytes = high;
    REQUIRE(usage < max);
    auto d = c.decide(o);
    max = *d.limits.memory_max_bytes;
    high = *d.limits.memory_high_bytes;
    CHECK(max >= usage + 64 * MiB);
  }
}

TEST_CASE("memory limits come down gradually when the working set shrinks") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 1.0);
  o.memory_max_bytes = 1000 * MiB;
  o.memory_high_bytes = 900 * MiB;
  o.memory_current_bytes = o.memory_working_set_bytes = 50 * MiB;
  auto d = c.decide(o);
  CHECK(*d.limits.memory_max_bytes == 900 * MiB);
  CHECK(*d.limits.memory_high_bytes == 810 * MiB);
}

TEST_CASE("memory pressure raises memory.high instead of lowering it") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 1.0);
  o.memory_high_bytes = 100 * MiB;
  o.memory_current_bytes = 100 * MiB;
  o.memory_working_set_bytes = 95 * MiB;
  o.memory_high_events = 12;
  CHECK(*c.decide(o).limits.memory_high_bytes >= 120 * MiB);
}

TEST_CASE("the first observation keeps the current limits") {
  HeuristicController c(node_params());
  auto o = steady(0, 0.5);
  o.first = true;
  auto d = c.decide(o);
  CHECK(*d.limits.cpu_cores == Approx(0.5));
  CHECK(*d.limits.memory_max_bytes == 400 * MiB);
}

TEST_CASE("limits at 'max' stay 'max' while the decision is the ceiling") {
  HeuristicController c(node_params());
  auto o = steady(0.0, std::nullopt);
  o.memory_high_bytes.reset();
  o.memory_max_bytes.reset();
  o.first = true;
  auto first = c.decide(o);
  CHECK_FALSE(first.limits.cpu_cores);
  CHECK_FALSE(first.limits.memory_high_bytes);
  CHECK_FALSE(first.limits.memory_max_bytes);
  o.first = false;
  o.cpu_usage_cores = 3.9;  // busy: no slack, so the CPU limit stays at the ceiling
  auto busy = c.decide(o);
  CHECK_FALSE(busy.limits.cpu_cores);
  CHECK(busy.limits.memory_max_bytes);  // memory follows the small working set down at once
}

TEST_CASE("after an OOM kill memory.max is raised and held, not lowered to the restarted container's usage") {
  HeuristicController c(node_params());
  auto o = steady(0.1, 1.0);
  o.memory_max_bytes = 200 * MiB;
  o.memory_high_bytes = 180 * MiB;
  o.memory_current_bytes = o.memory_working_set_bytes = 190 * MiB;
  (void)c.decide(o);
  o.memory_current_bytes = o.memory_working_set_bytes = 1 * MiB;  // killed and restarting
  o.oom_kill_events = 1;
  auto d = c.decide(o);
  CHECK(*d.limits.memory_max_bytes >= 285 * MiB);
  CHECK_THAT(d.reason, Catch::Contains("hit"));
  o.oom_kill_events = 0;
  o.memory_max_bytes = d.limits.memory_max_bytes;
  o.memory_high_bytes = d.limits.memory_high_bytes;
  for (int tick = 0; tick < 40; ++tick) {
    auto held = c.decide(o);
    REQUIRE(*held.limits.memory_max_bytes >= *d.limits.memory_max_bytes);
  }
}
