#include <catch2/catch.hpp>

#include "daemon/probes/psi_trigger.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::probes;
using namespace std::chrono_literals;

TEST_CASE("PSI trigger lines are formatted in microseconds") {
  CHECK(*format_psi_trigger(150ms, 1s) == "some 150000 1000000");
  CHECK(*format_psi_trigger(500ms, 500ms) == "some 500000 500000");
}

TEST_CASE("PSI trigger values the kernel would reject are EINVAL before any write") {
  for (const auto& [stall, window] : {std::pair{100ms, 400ms}, {1s, 11s}, {2s, 1s}, {0ms, 1s}}) {
    const auto line = format_psi_trigger(stall, window);
    REQUIRE_FALSE(line.ok());
    CHECK(line.error().errno_value == EINVAL);
  }
}

struct PsiFixture {
  ebb::testing::FakeCgroupTree tree;
};

TEST_CASE_METHOD(PsiFixture, "a PSI trigger writes its line, NUL-terminated, to the cgroup's pressure file") {
  const auto dir = tree.add_cgroup("ebb.slice/web.service");
  auto trigger = PsiTrigger::open(dir, PressureResource::memory, 100ms, 1s);
  REQUIRE(trigger.ok());
  CHECK(trigger->fd() >= 0);
  CHECK(trigger->path() == dir / "memory.pressure");
  // Written from offset 0 over the fixture's content; the kernel reads it up to the NUL.
  const auto content = tree.read("ebb.slice/web.service/memory.pressure");
  CHECK(content.substr(0, content.find('\0')) == "some 100000 1000000");
  // A regular file never reports POLLPRI.
  CHECK(*trigger->wait(0ms) == false);
}

TEST_CASE_METHOD(PsiFixture, "a PSI trigger on an absent controller file is ENOENT with the path") {
  const auto dir = tree.add_cgroup("ebb.slice/web.service");
  std::filesystem::remove(dir / "cpu.pressure");
  auto trigger = PsiTrigger::open(dir, PressureResource::cpu, 100ms, 1s);
  REQUIRE_FALSE(trigger.ok());
  CHECK(trigger.error().errno_value == ENOENT);
  CHECK(trigger.error().path == (dir / "cpu.pressure").string());
  CHECK(trigger.error().vanished());
}

TEST_CASE_METHOD(PsiFixture, "a moved PSI trigger keeps its fd and the source gives it up") {
  const auto dir = tree.add_cgroup("a");
  auto first = PsiTrigger::open(dir, PressureResource::io, 100ms, 1s);
  REQUIRE(first.ok());
  const int fd = first->fd();
  PsiTrigger moved = std::move(*first);
  CHECK(moved.fd() == fd);
  CHECK(first->fd() == -1);
}
