// CgroupFs::snapshot() under a ReadCadence: fast files every time through descriptors kept open,
// slow files carried until their refresh, a write or a memory.events notification.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "daemon/cgroup/cgroup.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::cgroup;
using ebb::testing::FakeCgroupTree;
using namespace std::chrono_literals;

namespace {

constexpr const char* kCgroup = "ebb.slice/app.service";

ReadCadence never_refresh(std::size_t max_open_files = 64) {
  return ReadCadence{std::chrono::hours(1), std::chrono::hours(1), max_open_files};
}
ReadCadence refresh_every(std::chrono::milliseconds slow, std::chrono::milliseconds rare) { return ReadCadence{slow, rare, 64}; }

std::string cpu_stat(std::uint64_t usage_usec) {
  return "usage_usec " + std::to_string(usage_usec) + "\nnr_periods 10\nnr_throttled 1\nthrottled_usec 5\n";
}

}  // namespace

TEST_CASE_METHOD(FakeCgroupTree, "cadence: cpu.stat and memory.current are read at every snapshot, the rest carried") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  const auto first = fs.snapshot(kCgroup);
  REQUIRE(first.ok());
  CHECK(fs.open_files() == 2);

  write(std::string(kCgroup) + "/cpu.stat", cpu_stat(5000));
  write(std::string(kCgroup) + "/memory.current", "7340032\n");
  write(std::string(kCgroup) + "/memory.stat", "anon 1\nactive_file 1\n");
  write(std::string(kCgroup) + "/cpu.weight", "900\n");
  write(std::string(kCgroup) + "/io.pressure", "some avg10=9.00 avg60=0.00 avg300=0.00 total=9\n");
  const auto second = fs.snapshot(kCgroup);
  REQUIRE(second.ok());
  CHECK(second->cpu_stat->usage_usec == 5000);
  CHECK(second->memory_current == 7340032u);
  CHECK(second->taken_at > first->taken_at);
  // Carried: the values of the first read, not defaults.
  CHECK(second->memory_stat->working_set() == first->memory_stat->working_set());
  CHECK(second->cpu_weight == first->cpu_weight);
  CHECK(second->io_pressure->some.total_usec == first->io_pressure->some.total_usec);
  CHECK(second->id == first->id);
  CHECK(second->path == kCgroup);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a limit written through the CgroupFs is read back at the next snapshot") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  REQUIRE(fs.snapshot(kCgroup).ok());
  REQUIRE(fs.write_cpu_max(kCgroup, CpuMax{20000, 100000}).ok());
  REQUIRE(fs.write_memory_high(kCgroup, 64u << 20).ok());
  // What the file holds, as the kernel would have rounded it, not what was written.
  write(std::string(kCgroup) + "/memory.high", std::to_string((64u << 20) - 4096) + "\n");
  const auto s = fs.snapshot(kCgroup);
  REQUIRE(s.ok());
  CHECK(s->cpu_max == CpuMax{20000, 100000});
  CHECK(s->memory_high == (64u << 20) - 4096);
  CHECK(s->memory_max == kUnlimited);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a changed memory.events is read at once, through inotify") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  const auto first = fs.snapshot(kCgroup);
  REQUIRE(first.ok());
  REQUIRE(first->memory_events->oom_kill == 0);
  write(std::string(kCgroup) + "/memory.events", "low 0\nhigh 7\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n");
  write(std::string(kCgroup) + "/memory.events.local", "low 0\nhigh 7\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n");
  std::this_thread::sleep_for(20ms);  // notifications are collected at most every 10 ms
  const auto second = fs.snapshot(kCgroup);
  REQUIRE(second.ok());
  CHECK(second->memory_events->oom_kill == 1);
  CHECK(second->memory_events->high == 7);
  CHECK(second->memory_events_local->high == 7);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: memory.stat and PSI are read again after the slow period, limits after the rare one") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), refresh_every(1ms, std::chrono::hours(1)));
  REQUIRE(fs.snapshot(kCgroup).ok());
  write(std::string(kCgroup) + "/cpu.weight", "900\n");
  write(std::string(kCgroup) + "/memory.max", "1048576\n");
  write(std::string(kCgroup) + "/memory.stat", "anon 3\nactive_file 4\n");
  write(std::string(kCgroup) + "/memory.pressure", "some avg10=7.50 avg60=0.00 avg300=0.00 total=9\n");
  std::this_thread::sleep_for(5ms);
  const auto s = fs.snapshot(kCgroup);
  REQUIRE(s.ok());
  CHECK(s->memory_stat->working_set() == 7);
  CHECK(s->memory_pressure->some.avg10 == 7.5);
  CHECK(s->cpu_weight == 100u);
  CHECK(s->memory_max == kUnlimited);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: every file is read again once the refresh periods have passed") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), refresh_every(1ms, 1ms));
  REQUIRE(fs.snapshot(kCgroup).ok());
  write(std::string(kCgroup) + "/cpu.weight", "900\n");
  write(std::string(kCgroup) + "/memory.stat", "anon 3\nactive_file 4\n");
  std::this_thread::sleep_for(5ms);
  const auto s = fs.snapshot(kCgroup);
  REQUIRE(s.ok());
  CHECK(s->cpu_weight == 900u);
  CHECK(s->memory_stat->working_set() == 7);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: past the descriptor budget, files are opened per read and still fresh") {
  const std::string cgroups[] = {"a", "b", "c"};
  for (const auto& c : cgroups) add_cgroup(c);
  CgroupFs fs(root(), never_refresh(3));
  for (const auto& c : cgroups) REQUIRE(fs.snapshot(c).ok());
  CHECK(fs.open_files() == 3);
  for (int round = 1; round <= 2; ++round) {
    for (const auto& c : cgroups) write(c + "/cpu.stat", cpu_stat(1000 * round));
    for (const auto& c : cgroups) {
      CAPTURE(c, round);
      const auto s = fs.snapshot(c);
      REQUIRE(s.ok());
      CHECK(s->cpu_stat->usage_usec == 1000u * round);
    }
  }
  CHECK(fs.open_files() == 3);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a cgroup without the memory controller is not searched for its files every time") {
  add_cgroup("cpuonly");
  for (const char* file : {"memory.current", "memory.high", "memory.max", "memory.events", "memory.events.local", "memory.stat"})
    std::filesystem::remove(root() / "cpuonly" / file);
  CgroupFs fs(root(), never_refresh());
  REQUIRE(fs.snapshot("cpuonly").ok());
  CHECK(fs.open_files() == 1);
  write("cpuonly/cpu.stat", cpu_stat(42));
  const auto s = fs.snapshot("cpuonly");
  REQUIRE(s.ok());
  CHECK(s->cpu_stat->usage_usec == 42);
  CHECK_FALSE(s->memory_current);
  CHECK_FALSE(s->memory_events);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a removed or recreated cgroup is a vanished error and releases its descriptors") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), refresh_every(1ms, 1ms));
  const auto first = fs.snapshot(kCgroup);
  REQUIRE(first.ok());
  REQUIRE(fs.open_files() == 2);

  SECTION("removed") {
    remove_cgroup(kCgroup);
    std::this_thread::sleep_for(5ms);  // a regular file stays readable: the refresh finds the directory gone
    const auto s = fs.snapshot(kCgroup);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().vanished());
    CHECK(s.error().cgroup == kCgroup);
    CHECK(fs.open_files() == 0);
  }
  SECTION("recreated under the same name") {
    const auto old_dir = root() / kCgroup;
    const int keep_inode = ::open(old_dir.c_str(), O_RDONLY | O_DIRECTORY);  // so the new one gets another inode
    remove_cgroup(kCgroup);
    add_cgroup(kCgroup);
    std::this_thread::sleep_for(5ms);
    const auto gone = fs.snapshot(kCgroup);
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().vanished());
    CHECK(fs.open_files() == 0);
    const auto fresh = fs.snapshot(kCgroup);
    REQUIRE(fresh.ok());
    CHECK(fresh->id != first->id);
    ::close(keep_inode);
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a quiet snapshot carries cpu.stat and memory.current until the slow period") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), refresh_every(100ms, std::chrono::hours(1)));
  const auto first = fs.snapshot(kCgroup);
  REQUIRE(first.ok());
  CHECK(first->cpu_stat_at == first->taken_at);
  write(std::string(kCgroup) + "/cpu.stat", cpu_stat(5000));
  write(std::string(kCgroup) + "/memory.current", "7340032\n");
  const auto quiet = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(quiet.ok());
  CHECK(quiet->cpu_stat->usage_usec == first->cpu_stat->usage_usec);
  CHECK(quiet->memory_current == first->memory_current);
  CHECK(quiet->cpu_stat_at == first->cpu_stat_at);  // carried: its rate waits for the next read
  CHECK(quiet->taken_at > first->taken_at);

  std::this_thread::sleep_for(120ms);
  const auto due = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(due.ok());
  CHECK(due->cpu_stat->usage_usec == 5000);
  CHECK(due->memory_current == 7340032u);
  CHECK(due->cpu_stat_at == due->taken_at);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a quiet snapshot still reads back a limit written meanwhile") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  REQUIRE(fs.snapshot(kCgroup).ok());
  REQUIRE(fs.write_cpu_max(kCgroup, CpuMax{20000, 100000}).ok());
  const auto s = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(s.ok());
  CHECK(s->cpu_max == CpuMax{20000, 100000});
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a quiet cgroup's PSI waits for the rare period unless an average is still decaying") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), refresh_every(1ms, std::chrono::hours(1)));
  REQUIRE(fs.snapshot(kCgroup).ok());  // the fixture's averages are all zero
  write(std::string(kCgroup) + "/memory.pressure", "some avg10=7.50 avg60=0.00 avg300=0.00 total=9\n");
  std::this_thread::sleep_for(5ms);
  const auto idle = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(idle.ok());
  CHECK(idle->memory_pressure->some.avg10 == 0);
  const auto busy = fs.snapshot(kCgroup);  // a tick in which it ran: the slow refresh is due
  REQUIRE(busy.ok());
  REQUIRE(busy->memory_pressure->some.avg10 == 7.5);
  write(std::string(kCgroup) + "/memory.pressure", "some avg10=6.10 avg60=0.00 avg300=0.00 total=9\n");
  std::this_thread::sleep_for(5ms);
  const auto decaying = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(decaying.ok());
  CHECK(decaying->memory_pressure->some.avg10 == 6.1);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a fresh snapshot reads every file at once") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  REQUIRE(fs.snapshot(kCgroup).ok());
  write(std::string(kCgroup) + "/cpu.weight", "900\n");
  write(std::string(kCgroup) + "/memory.max", "1048576\n");
  write(std::string(kCgroup) + "/memory.stat", "anon 3\nactive_file 4\n");
  write(std::string(kCgroup) + "/cpu.pressure", "some avg10=7.50 avg60=0.00 avg300=0.00 total=9\n");
  write(std::string(kCgroup) + "/cpu.stat", cpu_stat(777));
  const auto s = fs.snapshot(kCgroup, Freshness::fresh);
  REQUIRE(s.ok());
  CHECK(s->cpu_weight == 900u);
  CHECK(s->memory_max == 1048576u);
  CHECK(s->memory_stat->working_set() == 7);
  CHECK(s->cpu_pressure->some.avg10 == 7.5);
  CHECK(s->cpu_stat->usage_usec == 777);
  CHECK(fs.open_files() == 2);  // the kept descriptors are used, not opened anew
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: without a ReadCadence every snapshot reads every file, quiet or not") {
  add_cgroup(kCgroup);
  CgroupFs fs(root());
  REQUIRE(fs.snapshot(kCgroup).ok());
  write(std::string(kCgroup) + "/cpu.stat", cpu_stat(5000));
  const auto s = fs.snapshot(kCgroup, Freshness::quiet);
  REQUIRE(s.ok());
  CHECK(s->cpu_stat->usage_usec == 5000);
  CHECK(s->cpu_stat_at == s->taken_at);
}

TEST_CASE_METHOD(FakeCgroupTree, "cadence: a forgotten cgroup gives its descriptors back at once and is read whole next time") {
  add_cgroup(kCgroup);
  CgroupFs fs(root(), never_refresh());
  REQUIRE(fs.snapshot(kCgroup).ok());
  REQUIRE(fs.open_files() == 2);
  fs.forget(kCgroup);
  fs.forget("never/snapshotted");
  CHECK(fs.open_files() == 0);
  write(std::string(kCgroup) + "/cpu.weight", "900\n");
  const auto s = fs.snapshot(kCgroup);
  REQUIRE(s.ok());
  CHECK(s->cpu_weight == 900u);
  CHECK(fs.open_files() == 2);
}
