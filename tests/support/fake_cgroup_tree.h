#pragma once
// A throw-away directory laid out like /sys/fs/cgroup, built in code by each test.
#include <filesystem>
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

}  // namespace ebb::testing
