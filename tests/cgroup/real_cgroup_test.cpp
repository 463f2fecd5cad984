// Against a real cgroup v2 hierarchy, named by EBB_REAL_CGROUP_ROOT (set inside the test VM).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "daemon/cgroup/cgroup.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::cgroup;

using ebb::testing::kNoRealCgroupRoot;
using ebb::testing::real_cgroup_root;
using ebb::testing::ScopedRealCgroup;

TEST_CASE("real cgroup v2: snapshot, writers, read-back and cgroup id", "[real]") {
  const auto root = real_cgroup_root();
  if (!root) {
    WARN(kNoRealCgroupRoot);
    return;
  }
  CgroupFs fs(*root);
  const auto controllers = fs.subtree_control("");
  REQUIRE(controllers.ok());
  {
    INFO("the root must delegate cpu and memory to its children");
    REQUIRE(controllers->count("cpu") == 1);
    REQUIRE(controllers->count("memory") == 1);
  }

  const ScopedRealCgroup child(*root, "ebb-real-test-" + std::to_string(::getpid()));
  const auto& name = child.relative();

  const auto s = fs.snapshot(name);
  if (!s) FAIL(s.error().to_string());
  CHECK(s->cpu_stat);
  CHECK(s->cpu_max == CpuMax{std::nullopt, 100000});
  CHECK(s->cpu_weight == 100u);
  CHECK(s->memory_current);
  CHECK(s->memory_high == kUnlimited);
  CHECK(s->memory_max == kUnlimited);
  CHECK(s->memory_events);
  CHECK(s->memory_events_local);
  CHECK(s->memory_stat);
  CHECK(s->memory_pressure);
  CHECK(s->cpu_pressure);
  CHECK(s->io_pressure);

  struct stat st {};
  REQUIRE(::stat(child.dir().c_str(), &st) == 0);
  CHECK(s->id == st.st_ino);
  CHECK(fs.cgroup_id(name).value() == st.st_ino);

  REQUIRE(fs.write_cpu_max(name, CpuMax{50000, 100000}).ok());
  CHECK(fs.read_cpu_max(name).value() == CpuMax{50000, 100000});
  REQUIRE(fs.write_cpu_weight(name, 250).ok());
  CHECK(fs.read_cpu_weight(name).value() == 250u);
  REQUIRE(fs.write_memory_max(name, 256ull << 20).ok());
  CHECK(fs.read_memory_max(name).value() == 256ull << 20);
  REQUIRE(fs.write_memory_high(name, 128ull << 20).ok());
  CHECK(fs.read_memory_high(name).value() == 128ull << 20);
  REQUIRE(fs.write_memory_high(name, kUnlimited).ok());
  CHECK(fs.read_memory_high(name).value() == kUnlimited);

  // The kernel refuses a quota below 1 ms; the error must say so readably.
  const auto refused = fs.write_cpu_max(name, CpuMax{10, 100000});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().errno_value == EINVAL);
  CHECK(refused.error().cgroup == name);
  CHECK_THAT(refused.error().to_string(), Catch::Contains("cpu.max") && Catch::Contains("invalid"));
  const auto weight_refused = fs.write_cpu_weight(name, 0);
  REQUIRE_FALSE(weight_refused.ok());
  CHECK_FALSE(weight_refused.error().vanished());
}

TEST_CASE("real cgroup v2: a removed cgroup vanishes and its recreation has a new id", "[real]") {
  const auto root = real_cgroup_root();
  if (!root) {
    WARN(kNoRealCgroupRoot);
    return;
  }
  CgroupFs fs(*root);
  const std::string name = "ebb-real-recreate-" + std::to_string(::getpid());
  std::uint64_t first_id = 0;
  {
    const ScopedRealCgroup child(*root, name);
    first_id = fs.cgroup_id(name).value();
  }
  const auto gone = fs.snapshot(name);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().vanished());
  const auto gone_write = fs.write_memory_max(name, 1 << 20);
  REQUIRE_FALSE(gone_write.ok());
  CHECK(gone_write.error().vanished());

  const ScopedRealCgroup again(*root, name);
  const auto second_id = fs.cgroup_id(name);
  REQUIRE(second_id.ok());
  CHECK(*second_id != first_id);
}

TEST_CASE("real cgroup v2: the root and a cgroup without the memory controller snapshot cleanly", "[real]") {
  const auto root = real_cgroup_root();
  if (!root) {
    WARN(kNoRealCgroupRoot);
    return;
  }
  CgroupFs fs(*root);
  // The root has no limits files at all.
  const auto top = fs.snapshot("");
  if (!top) FAIL(top.error().to_string());
  CHECK(top->cpu_stat);
  CHECK_FALSE(top->cpu_max);
  CHECK_FALSE(top->memory_max);

  const ScopedRealCgroup parent(*root, "ebb-real-cpuonly-" + std::to_string(::getpid()));
  REQUIRE(fs.subtree_control(parent.relative()).value().empty());
  {
    std::ofstream control(parent.dir() / "cgroup.subtree_control");
    control << "+cpu";
  }
  const std::string child = parent.relative() + "/child";
  std::filesystem::create_directory(*root / child);
  const auto s = fs.snapshot(child);
  if (!s) FAIL(s.error().to_string());
  CHECK(s->cpu_max);
  CHECK(s->cpu_pressure);
  CHECK(s->io_pressure);
  CHECK_FALSE(s->memory_current);
  CHECK_FALSE(s->memory_max);
  CHECK_FALSE(s->memory_stat);
  const auto write = fs.write_memory_max(child, 1 << 30);
  REQUIRE_FALSE(write.ok());
  CHECK_FALSE(write.error().vanished());
  CHECK(write.error().errno_value == EOPNOTSUPP);
}

namespace {

// Runs a child process in `cgroup_dir` that burns CPU for `cpu_ms`, then touches `touch_bytes` of
// anonymous memory and keeps it until its stdin (the returned pipe end) is closed.
struct Occupant {
  pid_t pid = -1;
  int release = -1;
  int ready = -1;
};

Occupant start_occupant(const std::filesystem::path& cgroup_dir, int cpu_ms, std::size_t touch_bytes) {
  int go[2], done[2];
  REQUIRE(::pipe(go) == 0);
  REQUIRE(::pipe(done) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(go[1]);
    ::close(done[0]);
    std::ofstream(cgroup_dir / "cgroup.procs") << ::getpid() << '\n';
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(cpu_ms);
    while (std::chrono::steady_clock::now() < until) {
    }
    std::string memory(touch_bytes, 'x');
    char c = memory.back();
    if (::write(done[1], &c, 1) != 1) ::_exit(1);
    (void)::read(go[0], &c, 1);
    ::_exit(0);
  }
  ::close(go[0]);
  ::close(done[1]);
  return {pid, go[1], done[0]};
}

}  // namespace

// ebbd's ReadCadence keeps cpu.stat and memory.current open and re-reads them with pread at
// offset 0: the kernel must generate their text anew on each such read, and answer ENODEV
// once the cgroup is removed.
TEST_CASE("real cgroup v2: kept-open cpu.stat and memory.current follow the cgroup, removal is ENODEV", "[real]") {
  const auto root = real_cgroup_root();
  if (!root) {
    WARN(kNoRealCgroupRoot);
    return;
  }
  CgroupFs fs(*root, ReadCadence{std::chrono::hours(1), std::chrono::hours(1), 16});
  const std::string name = "ebb-real-cadence-" + std::to_string(::getpid());
  {
    const ScopedRealCgroup child(*root, name);
    const auto before = fs.snapshot(name);
    if (!before) FAIL(before.error().to_string());
    REQUIRE(fs.open_files() == 2);

    const auto occupant = start_occupant(child.dir(), 300, 32u << 20);
    char c = 0;
    REQUIRE(::read(occupant.ready, &c, 1) == 1);
    const auto during = fs.snapshot(name);
    ::close(occupant.release);
    int status = 0;
    ::waitpid(occupant.pid, &status, 0);
    ::close(occupant.ready);
    if (!during) FAIL(during.error().to_string());
    CHECK(fs.open_files() == 2);
    CHECK(during->cpu_stat->usage_usec >= before->cpu_stat->usage_usec + 50000);
    CHECK(*during->memory_current >= *before->memory_current + (16u << 20));
    CHECK(during->id == before->id);

    // A limit written through the CgroupFs is read back though the refresh is an hour away.
    REQUIRE(fs.write_memory_high(name, (64ull << 20) + 1).ok());
    const auto written = fs.snapshot(name);
    if (!written) FAIL(written.error().to_string());
    CHECK(written->memory_high == 64ull << 20);  // the kernel keeps whole pages
    // rmdir fails while the exited child still counts as a member.
    for (int i = 0; i < 100 && fs.read_file(name, "cgroup.procs").value() != ""; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto gone = fs.snapshot(name);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().vanished());
  CHECK(gone.error().errno_value == ENODEV);
  CHECK(fs.open_files() == 0);
}
