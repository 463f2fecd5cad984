#include <catch2/catch.hpp>

#include <random>

#include "daemon/learner/memory.h"

using namespace ebb::learner;
using namespace ebb::policy;

namespace {

constexpr std::uint64_t MiB = 1ull << 20;

ControllerParams node() {
  ControllerParams p;
  p.node_memory_bytes = 16384 * MiB;
  p.bounds.memory_max_bytes = 8192 * MiB;
  p.tick_s = 0.1;
  return p;
}

struct Step {
  Observation o;
  Limits limits;
  std::string reason;
};

// One tick's observation: usage (all of it working set) under the limits in force.
Observation at(std::uint64_t usage, const Limits& in_force) {
  Observation o;
  o.interval_s = 0.1;
  o.memory_current_bytes = o.memory_working_set_bytes = usage;
  o.memory_high_bytes = in_force.memory_high_bytes;
  o.memory_max_bytes = in_force.memory_max_bytes;
  return o;
}

// Feeds one observation built from usage and the limits of the previous step.
Step step(MemoryController& m, std::uint64_t usage, const Limits& previous) {
  Step s;
  s.o = at(usage, previous);
  m.decide(s.o, s.limits, s.reason);
  return s;
}

}  // namespace

TEST_CASE("memory.high probes down slowly toward the working set while there is no pressure") {
  MemoryController m(node(), {});
  Limits l{std::nullopt, 2048 * MiB, 4096 * MiB};
  const double start = m.headroom();
  for (int t = 0; t < 10; ++t) l = step(m, 1000 * MiB, l).limits;
  CHECK(m.headroom() < start);
  CHECK(m.headroom() > start * 0.9);  // slowly
  for (int t = 0; t < 2000; ++t) l = step(m, 1000 * MiB, l).limits;
  CHECK(m.headroom() == Approx(MemoryParams{}.high_headroom_min));
  CHECK(*l.memory_high_bytes == Approx(1000.0 * MiB * MemoryParams{}.high_headroom_min).epsilon(1e-6));
}

TEST_CASE("pressure backs memory.high off at once") {
  MemoryController m(node(), {});
  Limits l{std::nullopt, 2048 * MiB, 4096 * MiB};
  for (int t = 0; t < 500; ++t) l = step(m, 1000 * MiB, l).limits;
  const auto calm_high = *l.memory_high_bytes;
  Observation o = at(1000 * MiB, l);
  o.memory_high_events = 3;
  o.memory_pressure_some_avg10 = 20;
  std::string reason;
  m.decide(o, l, reason);
  CHECK(*l.memory_high_bytes >= calm_high * MemoryParams{}.back_off * 0.999);
  CHECK(reason.find("memory pressure") != std::string::npos);
}

TEST_CASE("memory.max never falls below usage plus a margin, and covers the largest recent jump") {
  MemoryParams fast;
  fast.max_half_life_s = 5;  // so memory.max comes down to the margin before the spike
  MemoryController m(node(), fast);
  Limits l{std::nullopt, 8192 * MiB, 8192 * MiB};
  std::uint64_t usage = 1000 * MiB;
  for (int t = 0; t < 3000; ++t) {
    usage = t == 1000 ? 2000 * MiB : t == 1030 ? 1000 * MiB : usage;  // one 1 GiB spike
    const auto s = step(m, usage, l);
    l = s.limits;
    REQUIRE(*l.memory_max_bytes >= usage + 64 * MiB);
    REQUIRE(*l.memory_max_bytes >= usage * 1.25);
    REQUIRE(*l.memory_high_bytes <= *l.memory_max_bytes);
    // After the spike has been seen, a repeat of it fits under memory.max.
    if (t > 1000) REQUIRE(*l.memory_max_bytes >= usage + 1000 * MiB);
  }
}

TEST_CASE("a memory.max event or a reclaim stall raises memory.max at once") {
  MemoryController m(node(), {});
  Limits l{std::nullopt, 1200 * MiB, 1500 * MiB};
  Observation o = at(1000 * MiB, l);
  o.memory_max_events = 1;
  std::string reason;
  m.decide(o, l, reason);
  CHECK(*l.memory_max_bytes >= 1500 * MiB * 1.5 * 0.999);
  CHECK(reason.find("memory.max hit") != std::string::npos);

  // A stall: 1.5 x (usage + its margin, 25% here), above the 1,500 MiB in force.
  MemoryController stalled(node(), {});
  Limits s{std::nullopt, 1200 * MiB, 1500 * MiB};
  o.memory_max_events = 0;
  o.reclaim_stall_s_per_s = 0.2;
  reason.clear();
  stalled.decide(o, s, reason);
  CHECK(*s.memory_max_bytes >= 1250 * MiB * 1.5 * 0.999);
  CHECK(reason.find("reclaim stalls") != std::string::npos);
}

TEST_CASE("reclaim stalls tick after tick do not compound memory.max") {
  // A container growing against memory.high stalls on every tick; usage stays 1,000 MiB.
  MemoryController m(node(), {});
  Limits l{std::nullopt, 1000 * MiB, 1500 * MiB};
  for (int t = 0; t < 50; ++t) {
    Observation o = at(1000 * MiB, l);
    o.reclaim_stall_s_per_s = 0.2;
    std::string reason;
    m.decide(o, l, reason);
  }
  CHECK(*l.memory_max_bytes >= 1500 * MiB);
  // At most memory.high's widest headroom (2x) over usage; it was the 8 GiB bound before.
  CHECK(*l.memory_max_bytes <= 2000 * MiB * 1.001);
  CHECK(*l.memory_high_bytes <= 2000 * MiB * 1.001);
}

TEST_CASE("memory.max comes down no faster than its half-life") {
  MemoryController m(node(), {});
  Limits l{std::nullopt, 8192 * MiB, 8192 * MiB};
  for (int t = 0; t < 6000; ++t) l = step(m, 100 * MiB, l).limits;  // 600 s: one half-life
  // Down to half, give or take the hysteresis band the value in force may be held within.
  CHECK(*l.memory_max_bytes >= 4096.0 * MiB * 0.99);
  CHECK(*l.memory_max_bytes <= 4096.0 * MiB / (1 - MemoryParams{}.hold_band));
}

TEST_CASE("memory limits of \"max\" stay \"max\" while the decision is the ceiling") {
  MemoryController m(node(), {});
  Observation first;
  first.first = true;
  Limits l;
  std::string reason;
  m.decide(first, l, reason);
  CHECK_FALSE(l.memory_max_bytes);
  CHECK_FALSE(l.memory_high_bytes);
  l = step(m, 1000 * MiB, l).limits;
  CHECK_FALSE(l.memory_max_bytes);  // the net is still the ceiling: nothing to write
  REQUIRE(l.memory_high_bytes);     // memory.high follows the working set from the first rate
  CHECK(*l.memory_high_bytes < 2000 * MiB);
}

TEST_CASE("hysteresis: noisy steady usage rarely rewrites memory limits, pressure still acts at once") {
  MemoryController m(node(), {});
  Limits l{std::nullopt, 2048 * MiB, 4096 * MiB};
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> noise(0.99, 1.01);
  for (int t = 0; t < 3000; ++t) l = step(m, static_cast<std::uint64_t>(1000.0 * MiB * noise(rng)), l).limits;
  int writes = 0;
  for (int t = 0; t < 1000; ++t) {
    const auto next = step(m, static_cast<std::uint64_t>(1000.0 * MiB * noise(rng)), l).limits;
    writes += (next.memory_high_bytes != l.memory_high_bytes) + (next.memory_max_bytes != l.memory_max_bytes);
    l = next;
  }
  CHECK(writes < 50);  // of 2,000 possible
  Observation o = at(1000 * MiB, l);
  o.memory_high_events = 1;
  std::string reason;
  Limits pressured;
  m.decide(o, pressured, reason);
  CHECK(*pressured.memory_high_bytes >= *l.memory_high_bytes * MemoryParams{}.back_off * 0.999);
}

TEST_CASE("memory limits stay within the container's bounds") {
  auto p = node();
  p.bounds.memory_max_bytes = 1024 * MiB;
  MemoryController m(p, {});
  Limits l{std::nullopt, 1024 * MiB, 1024 * MiB};
  l = step(m, 1000 * MiB, l).limits;
  CHECK(*l.memory_max_bytes == 1024 * MiB);
  CHECK(*l.memory_high_bytes <= 1024 * MiB);
}

TEST_CASE("the first observation's usage is not taken for growth") {
  MemoryParams fast;
  fast.max_half_life_s = 5;
  MemoryController m(node(), fast);
  Limits l{std::nullopt, 8192 * MiB, 8192 * MiB};
  Observation first;
  first.first = true;  // no previous snapshot: usage reads zero
  first.memory_high_bytes = l.memory_high_bytes;
  first.memory_max_bytes = l.memory_max_bytes;
  std::string reason;
  m.decide(first, l, reason);
  for (int t = 0; t < 1000; ++t) l = step(m, 1000 * MiB, l).limits;
  // Had 0 -> 1000 MiB counted as a jump, memory.max would hold usage + 2 x 1000 MiB.
  CHECK(*l.memory_max_bytes < 1500 * MiB);
  CHECK(*l.memory_max_bytes >= 1250 * MiB);
}
