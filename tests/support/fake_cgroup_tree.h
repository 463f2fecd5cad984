#pragma once
// A throw-away directory laid out like /sys/fs/cgroup, built in code by each test.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ebb::testing {

class FakeCgroupTree {
 public:
  FakeCgroupTree();
  // Builds the tree in `parent` instead of the system temp directory, e.g. on a tmpfs for a
  // test that creates and removes thousands of directories.
  explicit FakeCgroupTree(const std::filesystem::path& parent);
  ~FakeCgroupTree();
  FakeCgroupTree(const FakeCgroupTree&) = delete;
  FakeCgroupTree& operator=(const FakeCgroupTree&) = delete;

  const std::filesystem::path& root() const { return root_; }
  // Creates the cgroup directory (and parents) with a plausible set of v2 files.
  std::filesystem::path add_cgroup(std::string_view relative);
  // Writes (creating parents) a file below the root.
  void write(std::string_view relative_file, std::string_view content);
  std::string read(std::string_view relative_file) const;
  void remove_cgroup(std::string_view relative);

 private:
  std::filesystem::path root_;
};

// Tests against a real cgroup v2 hierarchy run where EBB_REAL_CGROUP_ROOT names its root (the
// test VM sets it) and skip with this reason elsewhere.
std::optional<std::filesystem::path> real_cgroup_root();
inline constexpr const char* kNoRealCgroupRoot =
    "skipped: EBB_REAL_CGROUP_ROOT is not set (it names a real cgroup v2 root, as in the test VM)";

// A cgroup created in a real hierarchy for one test and removed however the test ends, with
// any child cgroups made meanwhile (deepest first: cgroupfs removes cgroups only by rmdir).
class ScopedRealCgroup {
 public:
  ScopedRealCgroup(std::filesystem::path root, std::string relative);
  ~ScopedRealCgroup();
  ScopedRealCgroup(const ScopedRealCgroup&) = delete;
  ScopedRealCgroup& operator=(const ScopedRealCgroup&) = delete;
  const std::string& relative() const { return relative_; }
  std::filesystem::path dir() const { return root_ / relative_; }

 private:
  std::filesystem::path root_;
  std::string relative_;
};

}  // namespace ebb::testing
