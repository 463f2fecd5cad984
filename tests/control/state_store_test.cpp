#include <catch2/catch.hpp>

#include <fstream>

#include "daemon/control/state_store.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb;

TEST_CASE("originals survive a reopen, and the first record for an id wins") {
  testing::FakeCgroupTree dir;  // just a temp dir here
  control::OriginalLimits first{7, cgroup::CpuMax{20000, 100000}, cgroup::kUnlimited, 100ull << 20};
  control::OriginalLimits later{7, cgroup::CpuMax{90000, 100000}, 1ull << 30, 2ull << 30};
  {
    auto store = control::StateStore::open(dir.root());
    REQUIRE(store.ok());
    REQUIRE(store->remember("a/b", first).ok());
    REQUIRE(store->remember("a/b", later).ok());
  }
  auto store = control::StateStore::open(dir.root());
  REQUIRE(store.ok());
  REQUIRE(store->find("a/b"));
  CHECK(*store->find("a/b") == first);

  control::OriginalLimits recreated{8, cgroup::CpuMax{std::nullopt, 100000}, cgroup::kUnlimited, cgroup::kUnlimited};
  REQUIRE(store->remember("a/b", recreated).ok());
  CHECK(*store->find("a/b") == recreated);
  REQUIRE(store->forget("a/b").ok());
  CHECK(store->find("a/b") == nullptr);
}

TEST_CASE("a corrupt state file is an error, not a fresh start") {
  testing::FakeCgroupTree dir;
  dir.write("originals.json", "{ not json");
  auto store = control::StateStore::open(dir.root());
  REQUIRE_FALSE(store.ok());
  CHECK_THAT(store.error().message, Catch::Contains("corrupt state"));
  CHECK_THAT(store.error().path, Catch::Contains("originals.json"));
}

TEST_CASE("a missing state directory is created on the first write") {
  testing::FakeCgroupTree dir;
  auto store = control::StateStore::open(dir.root() / "nested" / "state");
  REQUIRE(store.ok());
  REQUIRE(store->remember("x", control::OriginalLimits{1}).ok());
  CHECK(std::filesystem::exists(dir.root() / "nested" / "state" / "originals.json"));
}

TEST_CASE("a failed persist keeps the record in memory and says why") {
  auto store = control::StateStore::open("/proc/ebb-no-such-dir");
  REQUIRE(store.ok());
  auto status = store->remember("x", control::OriginalLimits{1});
  CHECK_FALSE(status.ok());
  CHECK(store->find("x"));
}
