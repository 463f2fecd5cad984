#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "daemon/learner/learner.h"
#include "tests/learner/loop.h"

using namespace ebb::learner;
using namespace ebb::policy;
using ebb::learner::testing::run_loop;

namespace {

ControllerParams node() {
  ControllerParams p;
  p.node_cpu_cores = 16;
  p.node_memory_bytes = 16ull << 30;
  p.bounds.cpu_min_cores = 0.05;
  p.tick_s = 0.1;
  return p;
}

Observation steady(double usage, double limit) {
  Observation o;
  o.interval_s = 0.1;
  o.cpu_usage_cores = usage;
  o.cpu_limit_cores = limit;
  o.memory_current_bytes = o.memory_working_set_bytes = 256ull << 20;
  o.memory_high_bytes = 512ull << 20;
  o.memory_max_bytes = 1ull << 30;
  return o;
}

std::unique_ptr<ContainerController> make(const LearnerParams& p = {}) { return learner_factory(p)(node()); }

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// White noise of +-10% on every 10 ms around a level, as ebb-sim's synthetic demand.
std::function<double(int, int)> noisy(double level, std::uint64_t seed) {
  auto rng = std::make_shared<std::mt19937_64>(seed);
  return [level, rng](int, int) { return level * std::uniform_real_distribution<double>(0.9, 1.1)(*rng); };
}

}  // namespace

TEST_CASE("cold start: the heuristic decides and the decision says so") {
  auto c = make();
  Observation first = steady(0, 4);
  first.first = true;
  auto d = c->decide(first);
  CHECK(d.source == "fallback");
  CHECK(starts_with(d.reason, "fallback: cold start"));
  for (int t = 0; t < GuardParams{}.warmup_ticks - 1; ++t) {
    d = c->decide(steady(1, 4));
    CHECK(d.source == "fallback");
    CHECK(starts_with(d.reason, "fallback: cold start"));
  }
  for (int t = 0; t < 5; ++t) d = c->decide(steady(1, *d.limits.cpu_cores));
  CHECK(d.source == "learner");
  REQUIRE(d.predicted_cpu_cores);
  CHECK(*d.predicted_cpu_cores == Approx(1).epsilon(0.05));
}

TEST_CASE("a non-finite observation falls back and leaves finite limits") {
  auto c = make();
  double limit = 2;
  for (int t = 0; t < 30; ++t) limit = *c->decide(steady(1, limit)).limits.cpu_cores;
  auto bad = steady(std::nan(""), limit);
  bad.cpu_pressure_some_avg10 = INFINITY;
  auto d = c->decide(bad);
  CHECK(d.source == "fallback");
  CHECK(starts_with(d.reason, "fallback: non-finite observation"));
  REQUIRE(d.limits.cpu_cores);
  CHECK(std::isfinite(*d.limits.cpu_cores));
  // The learner was not poisoned: the next clean tick is its own again.
  d = c->decide(steady(1, *d.limits.cpu_cores));
  CHECK(d.source == "learner");
}

TEST_CASE("a forecast that overflows resets the learner and falls back until it relearns") {
  auto c = make();
  double limit = 2;
  for (int t = 0; t < 30; ++t) limit = *c->decide(steady(1, limit)).limits.cpu_cores;
  Decision d;
  for (int t = 0; t < 3 && d.source != "fallback"; ++t) d = c->decide(steady(1e300, limit));
  CHECK(d.source == "fallback");
  CHECK(starts_with(d.reason, "fallback: non-finite forecast"));
  REQUIRE(d.limits.cpu_cores);
  CHECK(*d.limits.cpu_cores <= 16);
  int fallback_ticks = 0;
  for (int t = 0; t < 100 && d.source != "learner"; ++t, ++fallback_ticks)
    d = c->decide(steady(1, *d.limits.cpu_cores));
  CHECK(d.source == "learner");
  CHECK(fallback_ticks >= GuardParams{}.fallback_ticks);
}

TEST_CASE("a misprediction streak hands control to the heuristic") {
  // An injected fault: a learner that may not raise its limit, facing demand that outgrows it.
  LearnerParams stuck;
  stuck.cpu.max_raise_factor = 1;
  stuck.cpu.min_step_cores = 0;
  auto c = make(stuck);
  double limit = 0.15;
  for (int t = 0; t < 40; ++t) limit = *c->decide(steady(0.1, limit)).limits.cpu_cores;
  bool fell_back = false;
  for (int t = 0; t < 6 && !fell_back; ++t) {
    auto o = steady(limit, limit);
    o.cpu_throttled_periods = 1;
    o.cpu_throttled_s_per_s = 0.75;
    const auto d = c->decide(o);
    fell_back = d.source == "fallback" && starts_with(d.reason, "fallback: misprediction streak");
    limit = *d.limits.cpu_cores;
  }
  CHECK(fell_back);
}

TEST_CASE("a burst the learner meets faster than the heuristic would does not trip the guard") {
  auto c = make();
  double limit = 0.15;
  for (int t = 0; t < 40; ++t) limit = *c->decide(steady(0.1, limit)).limits.cpu_cores;
  for (int t = 0; t < 6; ++t) {
    auto o = steady(limit, limit);
    o.cpu_throttled_periods = 1;
    o.cpu_throttled_s_per_s = 0.75;
    const auto d = c->decide(o);
    CHECK(d.source == "learner");
    limit = *d.limits.cpu_cores;
  }
}

TEST_CASE("bounds and the per-tick step hold whatever the observations") {
  auto p = node();
  p.bounds.cpu_min_cores = 0.2;
  p.bounds.cpu_max_cores = 6;
  auto c = learner_factory({})(p);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  double limit = 3;
  for (int t = 0; t < 5000; ++t) {
    auto o = steady(limit * 1.2 * u(rng), limit);
    o.cpu_throttled_periods = u(rng) < 0.2 ? u(rng) : 0;
    o.cpu_throttled_s_per_s = o.cpu_throttled_periods * u(rng);
    o.memory_current_bytes = o.memory_working_set_bytes = static_cast<std::uint64_t>((1 + 4 * u(rng)) * (1 << 30));
    o.memory_max_bytes = 6ull << 30;
    const auto d = c->decide(o);
    REQUIRE(d.limits.cpu_cores);
    const double l = *d.limits.cpu_cores;
    REQUIRE(l >= 0.2);
    REQUIRE(l <= 6);
    REQUIRE(l >= limit * CpuParams{}.max_lower_factor - 1e-12);
    REQUIRE(l <= limit * CpuParams{}.max_raise_factor + CpuParams{}.min_step_cores + 1e-12);
    REQUIRE(d.limits.memory_max_bytes);
    REQUIRE(*d.limits.memory_max_bytes >= o.memory_current_bytes + (64ull << 20));
    limit = l;
  }
}

TEST_CASE("closed loop, noisy steady demand: the objective is met with less slack than the heuristic") {
  auto learner = make();
  auto heuristic = heuristic_factory()(node());
  const auto a = run_loop(*learner, noisy(2, 1), 6000, 4);
  const auto b = run_loop(*heuristic, noisy(2, 1), 6000, 4);
  INFO("learner slack " << a.relative_slack << " throttled " << a.throttled_fraction);
  INFO("heuristic slack " << b.relative_slack << " throttled " << b.throttled_fraction);
  CHECK(a.throttled_fraction <= 0.01);
  CHECK(a.relative_slack < b.relative_slack);
  CHECK(a.relative_slack < 0.15);
  CHECK(a.learner_ticks > 5000);
}

TEST_CASE("hysteresis: small moves are not written, at no cost in throttling and little in slack") {
  LearnerParams every_tick;
  every_tick.cpu.hold_lower = every_tick.cpu.hold_raise = 0;
  auto held = make();
  auto churning = make(every_tick);
  const auto a = run_loop(*held, noisy(2, 1), 6000, 4);
  const auto b = run_loop(*churning, noisy(2, 1), 6000, 4);
  INFO("with hysteresis: " << a.cpu_writes << " writes, slack " << a.relative_slack << ", throttled " << a.throttled_fraction);
  INFO("without: " << b.cpu_writes << " writes, slack " << b.relative_slack << ", throttled " << b.throttled_fraction);
  CHECK(a.cpu_writes * 3 < b.cpu_writes);
  CHECK(a.throttled_fraction <= 0.01);
  CHECK(a.relative_slack < b.relative_slack + 0.05);
}

TEST_CASE("hysteresis: a small raise on a throttled tick goes out at once, even when small raises are held") {
  LearnerParams hold_raises;
  hold_raises.cpu.hold_raise = 0.05;
  auto c = make(hold_raises);
  for (int t = 0; t < 50; ++t) c->decide(steady(1.0, 1.5));  // warm, calm
  auto o = steady(1.0, 1.0);
  o.cpu_throttled_periods = 0.01;  // barely throttled: the reflex wants 1% more
  o.cpu_throttled_s_per_s = 0.001;
  const auto d = c->decide(o);
  REQUIRE(d.limits.cpu_cores);
  CHECK(*d.limits.cpu_cores > 1.0);
}

TEST_CASE("hysteresis: a limit within the band of the one in force is kept") {
  auto c = make();
  double limit = 1.2;
  for (int t = 0; t < 200; ++t) limit = *c->decide(steady(1.0, limit)).limits.cpu_cores;
  // Settled on a constant demand: the next decisions keep the limit exactly.
  for (int t = 0; t < 20; ++t) CHECK(*c->decide(steady(1.0, limit)).limits.cpu_cores == limit);
}

TEST_CASE("a cpu.max of \"max\" stays \"max\" on the first observation") {
  auto c = make();
  auto o = steady(0, 0);
  o.first = true;
  o.cpu_limit_cores.reset();
  o.memory_high_bytes.reset();
  o.memory_max_bytes.reset();
  const auto d = c->decide(o);
  CHECK_FALSE(d.limits.cpu_cores);
  CHECK_FALSE(d.limits.memory_high_bytes);
  CHECK_FALSE(d.limits.memory_max_bytes);
}

TEST_CASE("closed loop, demand that steps between levels: throttling stays within the objective") {
  auto learner = make();
  // 1 core, then 3, then 0.5, each for 100 s; +-10% noise on top.
  auto noise = noisy(1, 2);
  const auto level = [](int t) { return t < 1000 ? 1.0 : t < 2000 ? 3.0 : 0.5; };
  const auto r = run_loop(*learner, [&](int t, int j) { return level(t) * noise(t, j); }, 3000, 4);
  INFO("slack " << r.relative_slack << " throttled " << r.throttled_fraction);
  CHECK(r.throttled_fraction <= 0.01);
  CHECK(r.relative_slack < 0.3);
}

TEST_CASE("a run-queue latency objective: latency over target buys headroom as throttling would") {
  auto p = node();
  p.objective.runq_latency_p99_us = 500;
  auto calm = learner_factory({})(p);
  auto late = learner_factory({})(p);
  std::mt19937_64 rng(4);
  std::uniform_real_distribution<double> noise(0.95, 1.05);
  double calm_limit = 2, late_limit = 2;
  for (int t = 0; t < 600; ++t) {
    const double usage = noise(rng);
    auto a = steady(usage, calm_limit);
    a.runq_latency_p99_us = 200;
    auto b = steady(usage, late_limit);
    b.runq_latency_p99_us = t % 10 == 0 ? 2000 : 200;  // every tenth tick far over target
    calm_limit = *calm->decide(a).limits.cpu_cores;
    late_limit = *late->decide(b).limits.cpu_cores;
  }
  CHECK(late_limit > calm_limit * 1.05);
}
