#include "tests/support/fake_cgroup_tree.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ebb::testing {

FakeCgroupTree::FakeCgroupTree() : FakeCgroupTree(std::filesystem::temp_directory_path()) {}

FakeCgroupTree::FakeCgroupTree(const std::filesystem::path& parent) {
  std::string pattern = (parent / "ebb-cgroup-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  root_ = pattern;
  write("cgroup.controllers", "cpuset cpu io memory pids\n");
  write("cgroup.subtree_control", "cpu io memory pids\n");
}

FakeCgroupTree::~FakeCgroupTree() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::filesystem::path FakeCgroupTree::add_cgroup(std::string_view relative) {
  const auto dir = root_ / relative;
  std::filesystem::create_directories(dir);
  const std::string rel(relative);
  write(rel + "/cgroup.controllers", "cpu io memory pids\n");
  write(rel + "/cgroup.subtree_control", "\n");
  write(rel + "/cgroup.procs", "");
  write(rel + "/cpu.stat",
        "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\nnr_periods 100\nnr_throttled 0\n"
        "throttled_usec 0\nnr_bursts 0\nburst_usec 0\n");
  write(rel + "/cpu.max", "max 100000\n");
  write(rel + "/cpu.weight", "100\n");
  write(rel + "/memory.current", "104857600\n");
  write(rel + "/memory.high", "max\n");
  write(rel + "/memory.max", "max\n");
  write(rel + "/memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
  write(rel + "/memory.events.local", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
  write(rel + "/memory.stat",
        "anon 73400320\nfile 31457280\nkernel 1048576\nshmem 0\nactive_anon 70000000\ninactive_anon 3400320\n"
        "active_file 20971520\ninactive_file 10485760\nworkingset_refault_anon 0\nworkingset_refault_file 0\n"
        "pgscan 0\npgsteal 0\n");
  const char* psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
  write(rel + "/cpu.pressure", psi);
  write(rel + "/memory.pressure", psi);
  write(rel + "/io.pressure", psi);
  return dir;
}

void FakeCgroupTree::write(std::string_view relative_file, std::string_view content) {
  const auto file = root_ / relative_file;
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

std::string FakeCgroupTree::read(std::string_view relative_file) const {
  std::ifstream in(root_ / relative_file);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void FakeCgroupTree::remove_cgroup(std::string_view relative) { std::filesystem::remove_all(root_ / relative); }

std::optional<std::filesystem::path> real_cgroup_root() {
  const char* root = std::getenv("EBB_REAL_CGROUP_ROOT");
  if (!root || !*root) return std::nullopt;
  return std::filesystem::path(root);
}

ScopedRealCgroup::ScopedRealCgroup(std::filesystem::path root, std::string relative)
    : root_(std::move(root)), relative_(std::move(relative)) {
  std::filesystem::create_directory(dir());
}

namespace {

void remove_cgroup_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  for (const std::filesystem::directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::error_code entry;
    if (it->is_directory(entry)) remove_cgroup_dirs(it->path());
  }
  ::rmdir(dir.c_str());
}

}  // namespace

ScopedRealCgroup::~ScopedRealCgroup() { remove_cgroup_dirs(dir()); }

}  // namespace ebb::testing
