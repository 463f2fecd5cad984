#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <string>
#include <vector>

#include "daemon/discovery/discovery.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::discovery;
using ebb::cgroup::CgroupFs;
using ebb::testing::FakeCgroupTree;

namespace {

std::vector<Selector> selectors(const std::vector<std::string>& patterns) {
  std::vector<Selector> out;
  for (const auto& p : patterns) out.push_back(Selector::parse(p).value());
  return out;
}

std::vector<std::string> paths(const std::vector<Candidate>& candidates) {
  std::vector<std::string> out;
  for (const auto& c : candidates) out.push_back(c.path);
  return out;
}

}  // namespace

TEST_CASE_METHOD(FakeCgroupTree, "scan returns matched cgroups sorted, with names, ids and manageability") {
  add_cgroup("ebb.slice");
  write("ebb.slice/cgroup.subtree_control", "cpu memory pids\n");
  const auto web = add_cgroup("ebb.slice/web.service");
  add_cgroup("ebb.slice/db.service");
  add_cgroup("ebb.slice/db.service/inner");
  add_cgroup("cpuonly.slice");
  write("cpuonly.slice/cgroup.subtree_control", "cpu\n");
  add_cgroup("cpuonly.slice/batch.service");
  add_cgroup("none.slice");
  add_cgroup("none.slice/x.service");
  const std::string docker = "system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";
  add_cgroup("system.slice");
  write("system.slice/cgroup.subtree_control", "cpu io memory\n");
  add_cgroup(docker);
  add_cgroup("system.slice/sshd.service");

  CgroupFs fs(root());
  const auto found = scan(fs, selectors({"ebb.slice/*", "cpuonly.slice/*", "none.slice/*", "system.slice/docker-*.scope"}));
  REQUIRE(found.ok());
  CHECK(paths(*found) == std::vector<std::string>{"cpuonly.slice/batch.service", "ebb.slice/db.service",
                                                  "ebb.slice/web.service", "none.slice/x.service", docker});

  const auto& batch = (*found)[0];
  CHECK_FALSE(batch.manageable);
  CHECK(batch.unmanageable_reason == "parent cpuonly.slice does not delegate the memory controller");

  const auto& db = (*found)[1];
  CHECK(db.manageable);
  CHECK(db.unmanageable_reason.empty());
  CHECK(db.name == "db.service");

  const auto& web_candidate = (*found)[2];
  struct stat st {};
  REQUIRE(::stat(web.c_str(), &st) == 0);
  CHECK(web_candidate.id == st.st_ino);

  const auto& none = (*found)[3];
  CHECK_FALSE(none.manageable);
  CHECK(none.unmanageable_reason == "parent none.slice does not delegate the cpu and memory controllers");

  const auto& container = (*found)[4];
  CHECK(container.name == "docker:0123456789ab");
  CHECK(container.manageable);
}

TEST_CASE_METHOD(FakeCgroupTree, "scan names the root when it is the parent that does not delegate") {
  write("cgroup.subtree_control", "cpu io pids\n");
  add_cgroup("top.service");
  CgroupFs fs(root());
  const auto found = scan(fs, selectors({"*"}));
  REQUIRE(found.ok());
  REQUIRE(found->size() == 1);
  CHECK_FALSE((*found)[0].manageable);
  CHECK_THAT((*found)[0].unmanageable_reason, Catch::Contains("the cgroup root") && Catch::Contains("memory controller"));
}

TEST_CASE_METHOD(FakeCgroupTree, "scan with '**' finds cgroups at every depth and never the root itself") {
  add_cgroup("a/b/c");
  add_cgroup("d");
  CgroupFs fs(root());
  const auto found = scan(fs, selectors({"**"}));
  REQUIRE(found.ok());
  CHECK(paths(*found) == std::vector<std::string>{"a", "a/b", "a/b/c", "d"});
  const auto none = scan(fs, {});
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("scan of a missing root is an error") {
  CgroupFs fs("/nonexistent/ebb-cgroup-root");
  const auto found = scan(fs, selectors({"**"}));
  REQUIRE_FALSE(found.ok());
  CHECK(found.error().path == "/nonexistent/ebb-cgroup-root");
}
