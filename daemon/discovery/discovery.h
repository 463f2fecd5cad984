#pragma once
// Which cgroups ebbd manages: glob selectors over paths relative to the cgroup root, a tree
// scan, human names for systemd units, Docker, containerd and Kubernetes, and an inotify watch
// that says when the tree changed.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/cgroup/cgroup.h"
#include "daemon/common/error.h"

namespace ebb::discovery {

// A glob over a cgroup path relative to the root: '*' and '?' stay inside one path component,
// '**' spans any number of components (including none), '[abc]' is a character class ('[!a]'
// negates, '[a-c]' is a range, '\' escapes). parse() refuses absolute paths, empty, '.' and
// '..' components, '**' inside a component and an unterminated '['.
class Selector {
 public:
  static Result<Selector> parse(std::string pattern);
  bool matches(std::string_view relative_path) const;
  const std::string& pattern() const { return pattern_; }

 private:
  explicit Selector(std::string pattern) : pattern_(std::move(pattern)) {}
  std::string pattern_;
  std::vector<std::string> components_;  // the pattern split at '/', runs of '**' folded into one
};

// "system.slice/docker-0123abcd....scope" -> "docker:0123abcd0123"; Kubernetes pods and
// containerd, systemd services/scopes/slices likewise; otherwise the last path component.
std::string human_name(std::string_view relative_path);

struct Candidate {
  std::string path;             // relative to the root
  std::string name;             // human_name(path)
  std::uint64_t id = 0;         // cgroup id
  bool manageable = true;
  std::string unmanageable_reason;  // e.g. "parent ebb.slice does not delegate the memory controller"
};

// Walks the tree below the root and returns every cgroup matched by any selector, sorted by
// path. A directory that vanishes during the walk is skipped.
Result<std::vector<Candidate>> scan(const cgroup::CgroupFs& fs, const std::vector<Selector>& selectors);

// inotify on every directory of the tree (new directories are added as they appear). The fd
// is for the caller's event loop; drain() reads the pending events and says whether the set of
// cgroups may have changed, so the caller rescans.
class TreeWatcher {
 public:
  static Result<std::unique_ptr<TreeWatcher>> open(const std::filesystem::path& root);
  ~TreeWatcher();
  int fd() const { return fd_; }
  // Reads at most max_reads buffers of events (16 KiB each, a few hundred events). An event
  // loop passes a small bound: cgroups created faster than their events are handled would
  // otherwise keep it here for good. What is left stays pending and the fd readable.
  bool drain(std::size_t max_reads = std::numeric_limits<std::size_t>::max());
  // Directories watched now: those of the tree, none that was removed or moved away.
  std::size_t watches() const;

 private:
  TreeWatcher(std::filesystem::path root, int fd);
  void watch_recursively(const std::filesystem::path& dir);
  std::filesystem::path root_;
  int fd_;
  struct Watches;
  std::unique_ptr<Watches> watches_;
};

}  // namespace ebb::discovery
