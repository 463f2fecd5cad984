#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>

#include <fstream>
#include <string>

#include "daemon/discovery/discovery.h"
#include "tests/discovery/watch_helpers.h"
#include "tests/support/fake_cgroup_tree.h"

using ebb::discovery::TreeWatcher;
using ebb::testing::FakeCgroupTree;

using ebb::testing::changed_after_wait;
using ebb::testing::open_watcher;

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher's fd is nonblocking and quiet when nothing changed") {
  add_cgroup("ebb.slice");
  auto watcher = open_watcher(root());
  CHECK((::fcntl(watcher->fd(), F_GETFL) & O_NONBLOCK) != 0);
  CHECK_FALSE(watcher->drain());
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher sees a cgroup created and removed in an existing directory") {
  add_cgroup("ebb.slice");
  auto watcher = open_watcher(root());
  add_cgroup("ebb.slice/web.service");
  CHECK(changed_after_wait(*watcher));
  CHECK_FALSE(watcher->drain());
  remove_cgroup("ebb.slice/web.service");
  CHECK(changed_after_wait(*watcher));
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher ignores files, which are not cgroups") {
  add_cgroup("ebb.slice");
  auto watcher = open_watcher(root());
  write("ebb.slice/notes", "not a cgroup\n");
  CHECK_FALSE(changed_after_wait(*watcher));
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher watches new directories, including ones nested before it looked") {
  auto watcher = open_watcher(root());
  // Both levels exist before the watcher reads the first event, so "kubepods/pod1" can only
  // be watched by walking the new directory.
  std::filesystem::create_directories(root() / "kubepods" / "pod1");
  CHECK(changed_after_wait(*watcher));
  CHECK_FALSE(watcher->drain());
  add_cgroup("kubepods/pod1/container");
  CHECK(changed_after_wait(*watcher));
  remove_cgroup("kubepods/pod1/container");
  CHECK(changed_after_wait(*watcher));
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher follows a renamed directory") {
  add_cgroup("old");
  auto watcher = open_watcher(root());
  std::filesystem::rename(root() / "old", root() / "new");
  CHECK(changed_after_wait(*watcher));
  add_cgroup("new/child");
  CHECK(changed_after_wait(*watcher));
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher forgets the watches of removed and moved-away directories") {
  add_cgroup("ebb.slice");
  const auto outside = root().parent_path() / (root().filename().string() + "-outside");
  std::filesystem::create_directories(outside);
  auto watcher = open_watcher(root());
  const auto watched = watcher->watches();  // the root and ebb.slice
  CHECK(watched == 2);
  for (int round = 0; round < 3; ++round) {
    add_cgroup("ebb.slice/a");
    add_cgroup("ebb.slice/b/nested");
    CHECK(changed_after_wait(*watcher));
    CHECK(watcher->watches() == watched + 3);
    remove_cgroup("ebb.slice/a");
    // Moved out of the tree: the kernel keeps the watch on the directory (no IN_IGNORED).
    std::filesystem::rename(root() / "ebb.slice/b", outside / "b");
    CHECK(changed_after_wait(*watcher));
    CHECK(watcher->watches() == watched);
    std::filesystem::remove_all(outside / "b");
    // Nothing from outside the tree is reported.
    CHECK_FALSE(changed_after_wait(*watcher));
  }
  std::filesystem::remove_all(outside);
}

TEST_CASE_METHOD(FakeCgroupTree, "TreeWatcher's bounded drain leaves the rest of a flood pending") {
  auto watcher = open_watcher(root());
  // 2,000 events, about 64 KiB: several of drain's 16 KiB reads.
  const auto churn = root() / "churn";
  for (int i = 0; i < 1000; ++i) {
    std::filesystem::create_directory(churn);
    std::filesystem::remove(churn);
  }
  CHECK(watcher->drain(1));
  pollfd pfd{watcher->fd(), POLLIN, 0};
  CHECK(::poll(&pfd, 1, 0) == 1);  // still readable: the loop is woken again for the rest
  CHECK(watcher->drain());
  CHECK(::poll(&pfd, 1, 0) == 0);
  CHECK_FALSE(watcher->drain());
}

TEST_CASE("TreeWatcher reports an event queue overflow as a change and rewatches") {
  std::ifstream limit_file("/proc/sys/fs/inotify/max_queued_events");
  long limit = 0;
  if (!(limit_file >> limit) || limit > 100000) {
    WARN("skipped: fs.inotify.max_queued_events is unreadable or too large to overflow quickly");
    return;
  }
  // Tens of thousands of mkdir/rmdir: on a tmpfs where there is one, since a loaded disk
  // makes that take minutes.
  std::error_code ec;
  const auto shm = std::filesystem::path("/dev/shm");
  const FakeCgroupTree tree(std::filesystem::is_directory(shm, ec) ? shm : std::filesystem::temp_directory_path());
  auto watcher = open_watcher(tree.root());
  // Creating and removing one directory fills the queue without needing thousands of watches
  // (fs.inotify.max_user_watches is small in the test VM); the creation of "last" is then lost,
  // so only the rewatch after IN_Q_OVERFLOW can notice what happens inside it.
  const auto churn = tree.root() / "churn";
  for (long i = 0; i < limit / 2 + 100; ++i) {
    std::filesystem::create_directory(churn);
    std::filesystem::remove(churn);
  }
  std::filesystem::create_directory(tree.root() / "last");
  CHECK(changed_after_wait(*watcher));
  CHECK_FALSE(watcher->drain());
  std::filesystem::create_directory(tree.root() / "last" / "late");
  CHECK(changed_after_wait(*watcher));
}

TEST_CASE("TreeWatcher on a missing root is an error") {
  const auto watcher = TreeWatcher::open("/nonexistent/ebb-cgroup-root");
  REQUIRE_FALSE(watcher.ok());
  CHECK(watcher.error().vanished());
}
