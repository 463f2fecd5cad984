// TreeWatcher: inotify has no recursive mode, so every directory of the tree gets its own
// watch, and each new directory is watched (with whatever was created inside it before the
// watch landed) as soon as its creation is read.
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "daemon/discovery/discovery.h"
#include "daemon/discovery/internal.h"

namespace ebb::discovery {
namespace {

// Only the birth, death and renaming of directories change the set of cgroups; cgroupfs
// rejects files created by users, and file modifications (cgroup.events) are not our concern.
constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR;

}  // namespace

struct TreeWatcher::Watches {
  std::unordered_map<int, std::filesystem::path> dirs;  // watch descriptor -> directory
  bool warned = false;

  // Returns 0 or the errno. Adding an already watched directory returns its existing
  // descriptor, so the path is simply refreshed (it may have been renamed).
  int add(int fd, const std::filesystem::path& dir) {
    const int wd = ::inotify_add_watch(fd, dir.c_str(), kMask);
    if (wd < 0) return errno;
    dirs[wd] = dir;
    return 0;
  }
};

TreeWatcher::TreeWatcher(std::filesystem::path root, int fd)
    : root_(std::move(root)), fd_(fd), watches_(std::make_unique<Watches>()) {}

TreeWatcher::~TreeWatcher() { ::close(fd_); }

Result<std::unique_ptr<TreeWatcher>> TreeWatcher::open(const std::filesystem::path& root) {
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return system_error("cannot create an inotify instance", root.string(), errno);
  std::unique_ptr<TreeWatcher> watcher(new TreeWatcher(root, fd));
  if (const int err = watcher->watches_->add(fd, root)) return system_error("cannot watch the cgroup root", root.string(), err);
  watcher->watch_recursively(root);
  return watcher;
}

void TreeWatcher::watch_recursively(const std::filesystem::path& dir) {
  const int err = watches_->add(fd_, dir);
  // A directory that is already gone is simply not watched; anything else (most likely the
  // inotify watch limit, fs.inotify.max_user_watches) means changes may go unnoticed.
  if (err == ENOENT || err == ENOTDIR) return;
  if (err != 0) {
    if (!watches_->warned)
      spdlog::warn("cannot watch {} for new cgroups: {}; raise fs.inotify.max_user_watches", dir.string(),
                   std::strerror(err));
    watches_->warned = true;
    return;
  }
  for_each_subdirectory(dir, [&](const std::string& name) { watch_recursively(dir / name); });
}

bool TreeWatcher::drain() {
  bool changed = false;
  alignas(inotify_event) char buffer[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more pending
    for (const char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) {
        // Events were lost, new directories among them: everything may have changed, and the
        // whole tree is watched again (existing watches are kept).
        changed = true;
        watch_recursively(root_);
        continue;
      }
      if (event->mask & IN_IGNORED) {
        watches_->dirs.erase(event->wd);
        continue;
      }
      if (!(event->mask & IN_ISDIR)) continue;
      changed = true;
      if (!(event->mask & (IN_CREATE | IN_MOVED_TO))) continue;
      const auto parent = watches_->dirs.find(event->wd);
      if (parent != watches_->dirs.end()) watch_recursively(parent->second / event->name);
    }
  }
  return changed;
}

}  // namespace ebb::discovery
