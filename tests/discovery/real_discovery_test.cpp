// Discovery against a real cgroup v2 hierarchy, named by EBB_REAL_CGROUP_ROOT (set inside the
// test VM): cgroupfs must deliver inotify events for mkdir/rmdir and report delegation as the
// fake trees do.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "daemon/discovery/discovery.h"
#include "tests/discovery/watch_helpers.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::discovery;
using namespace ebb::testing;

TEST_CASE("real cgroup v2: TreeWatcher and scan on cgroupfs", "[real]") {
  const auto root = real_cgroup_root();
  if (!root) {
    WARN(kNoRealCgroupRoot);
    return;
  }
  const ScopedRealCgroup top(*root, "ebb-real-discovery-" + std::to_string(::getpid()));
  const auto& name = top.relative();
  auto watcher = open_watcher(*root);

  std::filesystem::create_directory(top.dir() / "app.service");
  CHECK(changed_after_wait(*watcher));
  std::filesystem::create_directories(top.dir() / "kubepods" / "pod1");
  CHECK(changed_after_wait(*watcher));
  std::filesystem::create_directory(top.dir() / "kubepods" / "pod1" / "container");
  CHECK(changed_after_wait(*watcher));
  REQUIRE(::rmdir((top.dir() / "app.service").c_str()) == 0);
  CHECK(changed_after_wait(*watcher));
  CHECK_FALSE(watcher->drain());

  const ebb::cgroup::CgroupFs fs(*root);
  const std::vector<Selector> selectors{Selector::parse(name + "/*").value()};
  const auto before = scan(fs, selectors);
  REQUIRE(before.ok());
  REQUIRE(before->size() == 1);
  CHECK((*before)[0].path == name + "/kubepods");
  CHECK_FALSE((*before)[0].manageable);
  CHECK((*before)[0].unmanageable_reason == "parent " + name + " does not delegate the cpu and memory controllers");

  {
    std::ofstream control(top.dir() / "cgroup.subtree_control");
    control << "+cpu +memory";
  }
  const auto after = scan(fs, selectors);
  REQUIRE(after.ok());
  REQUIRE(after->size() == 1);
  CHECK((*after)[0].manageable);
  struct stat st {};
  REQUIRE(::stat((top.dir() / "kubepods").c_str(), &st) == 0);
  CHECK((*after)[0].id == st.st_ino);
}
