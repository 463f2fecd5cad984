// TreeWatcher: inotify has no recursive mode, so every directory of the tree gets its own
// watch, and each new directory is watched (with whatever was created inside it before the
// watch landed) as soon as its creation is read.
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

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
  std::map<std::string, int> by_dir;                    // and back
  bool warned = false;

  // Returns 0 or the errno. Adding an already watched directory returns its existing
  // descriptor, so the path is simply refreshed (it may have been renamed).
  int add(int fd, const std::filesystem::path& dir) {
    const int wd = ::inotify_add_watch(fd, dir.c_str(), kMask);
    if (wd < 0) return errno;
    auto [it, added] = dirs.try_emplace(wd, dir);
    if (!added && it->second != dir) {
      by_dir.erase(it->second.string());
      it->second = dir;
    }
    by_dir[dir.string()] = wd;
    return 0;
  }

  // The kernel ended the watch (IN_IGNORED).
  void ended(int wd) {
    const auto it = dirs.find(wd);
    if (it == dirs.end()) return;
    if (const auto back = by_dir.find(it->second.string()); back != by_dir.end() && back->second == wd) by_dir.erase(back);
    dirs.erase(it);
  }

  // `dir` was removed or moved away: its watch and those below it go. cgroupfs sends no
  // IN_IGNORED for the watch of a removed cgroup (the kernel keeps the mark), and a directory
  // moved out of the tree keeps its watch, so waiting for IN_IGNORED would keep them forever.
  void forget(int fd, const std::string& dir) {
    auto drop = [&](std::map<std::string, int>::iterator it) {
      ::inotify_rm_watch(fd, it->second);  // EINVAL when the kernel ended it already
      dirs.erase(it->second);
      return by_dir.erase(it);
    };
    if (const auto it = by_dir.find(dir); it != by_dir.end()) drop(it);
    const std::string below = dir + "/";
    for (auto it = by_dir.lower_bound(below); it != by_dir.end() && it->first.starts_with(below);) it = drop(it);
  }

  // After lost events: the watches of directories that no longer exist.
  void forget_missing(int fd) {
    std::vector<std::string> gone;
    for (const auto& [dir, wd] : by_dir) {
      std::error_code ec;
      if (!std::filesystem::is_directory(dir, ec)) gone.push_back(dir);
    }
    for (const auto& dir : gone) forget(fd, dir);
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

std::size_t TreeWatcher::watches() const { return watches_->dirs.size(); }

bool TreeWatcher::drain(std::size_t max_reads) {
  bool changed = false;
  alignas(inotify_event) char buffer[16 * 1024];
  for (std::size_t reads = 0; reads < max_reads; ++reads) {
    const ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more pending
    for (const char* p = buffer; p < buffer + n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) {
        // Events were lost, new directories among them: everything may have changed, and the
        // whole tree is watched again (existing watches are kept, those of removed ones go).
        changed = true;
        watches_->forget_missing(fd_);
        watch_recursively(root_);
        continue;
      }
      if (event->mask & IN_IGNORED) {
        watches_->ended(event->wd);
        continue;
      }
      if (!(event->mask & IN_ISDIR)) continue;
      changed = true;
      const auto parent = watches_->dirs.find(event->wd);
      if (parent == watches_->dirs.end()) continue;
      const auto dir = parent->second / event->name;
      if (event->mask & (IN_CREATE | IN_MOVED_TO)) watch_recursively(dir);
      else watches_->forget(fd_, dir.string());  // IN_DELETE, IN_MOVED_FROM
    }
  }
  return changed;
}

}  // namespace ebb::discovery
