#include <catch2/catch.hpp>

#include "sim/baselines.h"
#include "tests/sim/sim_fixtures.h"

using namespace ebb::sim;
using namespace ebb::sim::testing;
using ebb::policy::ControllerParams;
using ebb::policy::Observation;

namespace {

constexpr std::uint64_t GiB = 1ull << 30;

ControllerParams node() {
  ControllerParams p;
  p.node_cpu_cores = 16;
  p.node_memory_bytes = 64 * GiB;
  p.tick_s = 0.1;
  return p;
}

Observation tick(double usage, double limit, std::uint64_t memory = 500 * MiB, std::uint64_t memory_max = 4 * GiB) {
  Observation o;
  o.interval_s = 0.1;
  o.cpu_usage_cores = usage;
  o.cpu_limit_cores = limit;
  o.memory_current_bytes = o.memory_working_set_bytes = memory;
  o.memory_max_bytes = memory_max;
  return o;
}

Observation first(double limit) {
  auto o = tick(0, limit);
  o.first = true;
  return o;
}

}  // namespace

TEST_CASE("static: a percentile of the whole trace plus margin, set once") {
  TraceSummary summary;
  for (int i = 0; i < 100; ++i) summary.tick_cpu_cores.add(1.0);
  summary.tick_cpu_cores.add(8.0);  // one tick in 101: above the 99th percentile
  summary.peak_memory_bytes = GiB;
  StaticController c(node(), summary);
  for (const auto& o : {first(4), tick(1, 1.15), tick(8, 1.15)}) {
    const auto d = c.decide(o);
    CHECK(*d.limits.cpu_cores == Approx(1.15).epsilon(0.01));
    CHECK(static_cast<double>(*d.limits.memory_max_bytes) == Approx(1.15 * GiB));
  }
}

TEST_CASE("vpa: p90 of the usage histogram plus 15%, once per (scaled) minute") {
  VpaController c(node(), 60);  // 1-minute interval / 60 = 1 s = 10 ticks
  CHECK(*c.decide(first(4)).limits.cpu_cores == 4);
  for (int i = 0; i < 9; ++i) CHECK(*c.decide(tick(1.0, 4)).limits.cpu_cores == 4);  // between intervals
  const auto d = c.decide(tick(1.0, 4));
  CHECK(*d.limits.cpu_cores >= 1.15);
  CHECK(*d.limits.cpu_cores <= 1.15 * 1.05);  // one 5% bucket above
  CHECK(static_cast<double>(*d.limits.memory_max_bytes) >= 1.15 * 500 * MiB);
  CHECK(static_cast<double>(*d.limits.memory_max_bytes) <= 1.15 * 1.05 * 500 * MiB);
}

TEST_CASE("vpa: an OOM kill bumps the memory sample to max(limit + 100 MB, 1.2 x limit)") {
  VpaController c(node(), 60);
  c.decide(first(4));
  auto oom = tick(1.0, 4, 0, GiB);
  oom.oom_kill_events = 1;
  c.decide(oom);
  ebb::policy::Decision d;
  for (int i = 0; i < 9; ++i) d = c.decide(tick(1.0, 4, 0, GiB));
  const double bumped = 1.2 * GiB * 1.15;  // 1.2 x 1 GiB exceeds 1 GiB + 100 MB
  CHECK(static_cast<double>(*d.limits.memory_max_bytes) >= bumped);
  CHECK(static_cast<double>(*d.limits.memory_max_bytes) <= bumped * 1.05);
}

TEST_CASE("decaying histogram: a sample one half-life newer weighs twice as much") {
  DecayingHistogram h(0.01, 1.05, 100, 10);
  h.add(1.0);
  h.advance(10);
  h.add(2.0);  // weights 1 and 2
  CHECK(h.percentile(30) == Approx(1.0).epsilon(0.05));
  CHECK(h.percentile(40) == Approx(2.0).epsilon(0.05));
  h.advance(1000);  // rescaling keeps the proportions
  h.add(2.0, 0);
  CHECK(h.percentile(30) == Approx(1.0).epsilon(0.05));
}

TEST_CASE("autopilot: decayed percentile plus margin") {
  AutopilotController c(node(), 3600);  // 5-minute samples every tick, a 1 s window
  c.decide(first(4));
  ebb::policy::Decision d;
  for (int i = 0; i < 20; ++i) d = c.decide(tick(1.0, 4));
  CHECK(*d.limits.cpu_cores >= 1.10);
  CHECK(*d.limits.cpu_cores <= 1.10 * 1.05);
}

TEST_CASE("autopilot: the limit is the largest recommendation of the last (scaled) hour") {
  AutopilotParams p;
  p.cpu_half_life_s = 1;  // scaled: forgets within a tick, so each recommendation is the last usage
  AutopilotController c(node(), 3600, p);
  c.decide(first(4));
  for (int i = 0; i < 5; ++i) c.decide(tick(1.0, 4));
  std::vector<double> limits;
  for (int i = 0; i < 15; ++i) limits.push_back(*c.decide(tick(0.1, 4)).limits.cpu_cores);
  CHECK(limits[8] >= 1.10);  // within the 1 s window of the last 1-core sample
  CHECK(limits[14] <= 0.1 * 1.10 * 1.05);
}

TEST_CASE("escra: grow on throttling, shrink to 0.8x when over 20% is unused") {
  EscraController c(node());
  c.decide(first(1));
  auto throttled = tick(1.0, 1.0);
  throttled.cpu_throttled_periods = 0.5;
  CHECK(*c.decide(throttled).limits.cpu_cores == Approx(1.2));
  CHECK(*c.decide(tick(0.7, 1.0)).limits.cpu_cores == Approx(0.8));
  CHECK(*c.decide(tick(0.9, 1.0)).limits.cpu_cores == Approx(1.0));
}

TEST_CASE("escra: memory in 64 MiB slices, granted near or at the limit, given back when unused") {
  EscraController c(node());
  c.decide(first(1));
  CHECK(*c.decide(tick(1, 1, 1000 * MiB, 1024 * MiB)).limits.memory_max_bytes == 1088 * MiB);
  CHECK(*c.decide(tick(1, 1, 500 * MiB, 1024 * MiB)).limits.memory_max_bytes == 960 * MiB);
  CHECK(*c.decide(tick(1, 1, 900 * MiB, 1024 * MiB)).limits.memory_max_bytes == 1024 * MiB);
  auto oom = tick(1, 1, 0, 512 * MiB);
  oom.oom_kill_events = 1;
  CHECK(*c.decide(oom).limits.memory_max_bytes == 576 * MiB);
}

TEST_CASE("autothrottle: steer the throttled share of periods to the target once a second") {
  auto interval = [](AutothrottleController& c, double throttled, double usage, double limit) {
    ebb::policy::Decision d;
    for (int i = 0; i < 10; ++i) {
      auto o = tick(usage, limit);
      o.cpu_throttled_periods = throttled;
      d = c.decide(o);
      if (i < 9) CHECK(*d.limits.cpu_cores == limit);  // between intervals
    }
    return *d.limits.cpu_cores;
  };
  AutothrottleController c(node());
  c.decide(first(1));
  CHECK(interval(c, 0.55, 1, 1) == Approx(2.0));   // x(1 + 2 x 0.5)
  CHECK(interval(c, 0.15, 1, 1) == Approx(1.2));   // x(1 + 2 x 0.1)
  CHECK(interval(c, 0.0, 0.5, 1) == Approx(0.9));  // 10% lower, still above 0.5 x 1.1
  CHECK(interval(c, 0.0, 0.95, 1) == Approx(1.045));  // not below peak usage x 1.1
}

TEST_CASE("the peak oracle sets the next tick's 10 ms peak and memory") {
  std::vector<float> cpu(10, 0.5f);
  cpu[7] = 2.0f;
  std::vector<std::uint64_t> memory{300 * MiB};
  double backlog = 0;
  NextTick next(&cpu, &memory, &backlog, 0, 10, 10);
  OracleController peak(next, OracleController::Cpu::peak), cfs(next, OracleController::Cpu::cfs);
  CHECK(*peak.decide(tick(0, 1)).limits.cpu_cores == Approx(2.0));
  CHECK(*cfs.decide(tick(0, 1)).limits.cpu_cores == Approx(0.65));
  CHECK(*peak.decide(tick(0, 1)).limits.memory_max_bytes == 300 * MiB);
}
