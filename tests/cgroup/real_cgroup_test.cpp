// Against a real cgroup v2 hierarchy, named by EBB_REAL_CGROUP_ROOT (set inside the test VM).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "daemon/cgroup/cgroup.h"

using namespace ebb::cgroup;

namespace {

// Creates a child cgroup of the real root and removes it however the test ends.
class RealChild {
 public:
  RealChild(std::filesystem::path root, std::string name) : root_(std::move(root)), name_(std::move(name)) {
    std::filesystem::create_directory(root_ / name_);
  }
  ~RealChild() {
    std::error_code ignored;
    std::filesystem::remove(root_ / name_, ignored);
  }
  RealChild(const RealChild&) = delete;
  RealChild& operator=(const RealChild&) = delete;
  const std::string& name() const { return name_; }
  std::filesystem::path dir() const { return root_ / name_; }

 private:
  std::filesystem::path root_;
  std::string name_;
};

const char* real_root() {
  const char* root = std::getenv("EBB_REAL_CGROUP_ROOT");
  if (!root) WARN("skipped: EBB_REAL_CGROUP_ROOT is not set (it names a real cgroup v2 root, as in the test VM)");
  return root;
}

}  // namespace

TEST_CASE("real cgroup v2: snapshot, writers, read-back and cgroup id", "[real]") {
  const char* root = real_root();
  if (!root) return;
  CgroupFs fs(root);
  const auto controllers = fs.subtree_control("");
  REQUIRE(controllers.ok());
  INFO("the root must delegate cpu and memory to its children");
  REQUIRE(controllers->count("cpu") == 1);
  REQUIRE(controllers->count("memory") == 1);

  const RealChild child(root, "ebb-real-test-" + std::to_string(::getpid()));
  const auto& name = child.name();

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
  WARN("kernel refusals read: " << refused.error().to_string() << " | " << weight_refused.error().to_string());
}

TEST_CASE("real cgroup v2: a removed cgroup vanishes and its recreation has a new id", "[real]") {
  const char* root = real_root();
  if (!root) return;
  CgroupFs fs(root);
  const std::string name = "ebb-real-recreate-" + std::to_string(::getpid());
  std::uint64_t first_id = 0;
  {
    const RealChild child(root, name);
    first_id = fs.cgroup_id(name).value();
  }
  const auto gone = fs.snapshot(name);
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().vanished());
  const auto gone_write = fs.write_memory_max(name, 1 << 20);
  REQUIRE_FALSE(gone_write.ok());
  CHECK(gone_write.error().vanished());

  const RealChild again(root, name);
  const auto second_id = fs.cgroup_id(name);
  REQUIRE(second_id.ok());
  CHECK(*second_id != first_id);
}
