#include <catch2/catch.hpp>

#include "daemon/control/observe.h"

using namespace ebb;
using namespace std::chrono_literals;

namespace {
cgroup::Snapshot snapshot_at(std::chrono::steady_clock::time_point t, std::uint64_t usage_usec, std::uint64_t periods,
                             std::uint64_t throttled) {
  cgroup::Snapshot s;
  s.taken_at = t;
  s.cpu_stat = cgroup::CpuStat{usage_usec, 0, 0, periods, throttled, throttled * 1000};
  s.cpu_max = cgroup::CpuMax{50000, 100000};
  s.memory_current = 100ull << 20;
  s.memory_high = cgroup::kUnlimited;
  s.memory_max = 200ull << 20;
  s.memory_stat = cgroup::MemoryStat{};
  s.memory_stat->anon = 60ull << 20;
  s.memory_stat->active_file = 10ull << 20;
  s.memory_events = cgroup::MemoryEvents{};
  return s;
}
}  // namespace

TEST_CASE("two snapshots become rates over their interval") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  auto a = snapshot_at(t0, 1'000'000, 100, 0);
  auto b = snapshot_at(t0 + 200ms, 1'100'000, 102, 1);
  b.memory_events->oom_kill = 2;
  auto o = control::observe(&a, b);
  CHECK_FALSE(o.first);
  CHECK(o.interval_s == Approx(0.2));
  CHECK(o.cpu_usage_cores == Approx(0.5));
  CHECK(o.cpu_throttled_periods == Approx(0.5));
  CHECK(*o.cpu_limit_cores == Approx(0.5));
  CHECK(o.memory_working_set_bytes == 70ull << 20);
  CHECK_FALSE(o.memory_high_bytes);
  CHECK(*o.memory_max_bytes == 200ull << 20);
  CHECK(o.oom_kill_events == 2);
}

TEST_CASE("the first snapshot has no rates") {
  auto a = snapshot_at(std::chrono::steady_clock::now(), 5, 5, 5);
  auto o = control::observe(nullptr, a);
  CHECK(o.first);
  CHECK(o.cpu_usage_cores == 0);
}

TEST_CASE("a counter that went backwards (cgroup recreated) gives zero, not a huge rate") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  auto a = snapshot_at(t0, 9'000'000, 100, 50);
  auto b = snapshot_at(t0 + 200ms, 1'000, 1, 0);
  auto o = control::observe(&a, b);
  CHECK(o.cpu_usage_cores == 0);
  CHECK(o.cpu_throttled_periods == 0);
}

// Under ebbd's ReadCadence memory.events is re-read only when it changed or a second has passed;
// in between a snapshot carries the last value. Events must then count once, on the tick that
// reads them, while the CPU rates of every tick stay over that tick's own interval.
TEST_CASE("carried memory.events count once, CPU rates stay per tick") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  auto a = snapshot_at(t0, 1'000'000, 100, 0);
  auto carried = snapshot_at(t0 + 100ms, 1'050'000, 101, 0);  // memory.events as in `a`
  auto refreshed = snapshot_at(t0 + 200ms, 1'150'000, 102, 1);
  refreshed.memory_events->high = 3;
  refreshed.memory_events->oom_kill = 1;
  const auto o1 = control::observe(&a, carried);
  const auto o2 = control::observe(&carried, refreshed);
  CHECK(o1.memory_high_events == 0);
  CHECK(o1.oom_kill_events == 0);
  CHECK(o2.memory_high_events == 3);
  CHECK(o2.oom_kill_events == 1);
  CHECK(o1.cpu_usage_cores == Approx(0.5));
  CHECK(o2.cpu_usage_cores == Approx(1.0));
}

TEST_CASE("plan_writes skips tiny changes and orders memory writes safely") {
  auto s = snapshot_at(std::chrono::steady_clock::now(), 0, 0, 0);
  s.memory_high = 150ull << 20;
  policy::Limits same{0.5 * 1.005, 150ull << 20, 200ull << 20};
  CHECK(control::plan_writes(s, same).empty());

  policy::Limits raise{1.0, 300ull << 20, 400ull << 20};
  auto up = control::plan_writes(s, raise);
  REQUIRE(up.size() == 3);
  CHECK(up[0].describe() == "cpu.max=100000 100000");
  CHECK(up[1].describe() == "memory.max=419430400");
  CHECK(up[2].describe() == "memory.high=314572800");

  policy::Limits lower{0.25, 100ull << 20, 120ull << 20};
  auto down = control::plan_writes(s, lower);
  REQUIRE(down.size() == 3);
  CHECK(down[1].describe() == "memory.high=104857600");
  CHECK(down[2].describe() == "memory.max=125829120");

  policy::Limits unlimited{std::nullopt, std::nullopt, std::nullopt};
  auto to_max = control::plan_writes(s, unlimited);
  REQUIRE(to_max.size() == 3);
  CHECK(to_max[0].describe() == "cpu.max=max 100000");
}

TEST_CASE("a tiny CPU limit is written as the kernel's minimum quota") {
  auto s = snapshot_at(std::chrono::steady_clock::now(), 0, 0, 0);
  auto w = control::plan_writes(s, policy::Limits{0.001, std::nullopt, 200ull << 20});
  REQUIRE_FALSE(w.empty());
  CHECK(w[0].describe() == "cpu.max=1000 100000");
}

TEST_CASE("no write is planned for a controller that is not enabled") {
  cgroup::Snapshot s;
  CHECK(control::plan_writes(s, policy::Limits{1.0, 1ull << 30, 2ull << 30}).empty());
}

TEST_CASE("a limit of 'max' is replaced by a number") {
  auto s = snapshot_at(std::chrono::steady_clock::now(), 0, 0, 0);
  s.memory_max = cgroup::kUnlimited;
  s.memory_high = cgroup::kUnlimited;
  auto w = control::plan_writes(s, policy::Limits{0.5, 1ull << 30, 2ull << 30});
  REQUIRE(w.size() == 2);
  CHECK(w[0].describe() == "memory.high=1073741824");  // a lowering: memory.high goes first
  CHECK(w[1].describe() == "memory.max=2147483648");
}

// A quiet tick carries cpu.stat (ebbd did not re-read it): the probes' CPU time stands in, and
// the next read gives the rate over the interval since the previous read, not since the last tick.
TEST_CASE("a carried cpu.stat gives the probes' usage, and the next read a rate over its own interval") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  auto a = snapshot_at(t0, 1'000'000, 100, 0);
  a.cpu_stat_at = t0;
  auto carried = a;
  carried.taken_at = t0 + 100ms;
  control::ProbeDelta idle;
  idle.cpu_cores = 0.001;
  const auto quiet = control::observe(&a, carried, &idle);
  CHECK(quiet.interval_s == Approx(0.1));
  CHECK(quiet.cpu_usage_cores == Approx(0.001));
  CHECK(quiet.cpu_throttled_periods == 0);

  auto read = snapshot_at(t0 + 1s, 1'500'000, 110, 5);
  read.cpu_stat_at = t0 + 1s;
  const auto o = control::observe(&carried, read);
  CHECK(o.interval_s == Approx(0.9));
  CHECK(o.cpu_usage_cores == Approx(0.5));  // 0.5 s of CPU over the 1 s between the reads
  CHECK(o.cpu_throttled_periods == Approx(0.5));
}

TEST_CASE("cpu_stat_moved tells usage or throttling that moved from a carried cpu.stat") {
  const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
  auto a = snapshot_at(t0, 1'000, 100, 0);
  a.cpu_stat_at = t0;
  auto same = snapshot_at(t0 + 100ms, 1'000, 101, 0);
  same.cpu_stat_at = t0 + 100ms;
  auto ran = snapshot_at(t0 + 100ms, 2'000, 101, 0);
  ran.cpu_stat_at = t0 + 100ms;
  auto throttled = snapshot_at(t0 + 100ms, 1'000, 101, 1);
  throttled.cpu_stat_at = t0 + 100ms;
  auto carried = a;
  carried.taken_at = t0 + 100ms;
  CHECK(control::cpu_stat_moved(a, same) == false);
  CHECK(control::cpu_stat_moved(a, ran) == true);
  CHECK(control::cpu_stat_moved(a, throttled) == true);
  CHECK_FALSE(control::cpu_stat_moved(a, carried).has_value());
  auto none = same;
  none.cpu_stat.reset();
  CHECK_FALSE(control::cpu_stat_moved(a, none).has_value());
}

TEST_CASE("tick_freshness: quiet only for a cgroup that the probes and cpu.stat both show idle") {
  probes::CgroupCounters before, after;
  before.cpu_ns = after.cpu_ns = 5'000'000;
  using cgroup::Freshness;
  CHECK(control::tick_freshness(false, &before, &after) == Freshness::quiet);
  CHECK(control::tick_freshness(false, nullptr, &after) == Freshness::cadence);  // no probes, or a new cgroup
  CHECK(control::tick_freshness(false, &before, nullptr) == Freshness::cadence);
  CHECK(control::tick_freshness(true, &before, &after) == Freshness::cadence);  // e.g. tasks in descendants
  auto ran = after;
  ran.cpu_ns += 1;
  CHECK(control::tick_freshness(false, &before, &ran) == Freshness::cadence);
}
