#pragma once
// Real cgroup v2 directories and processes for the tests that run on a real kernel: the host
// test of the probes (as root) and the VM tests. Not for unit tests, which use fake trees.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ebb::testing {

// Where cgroup2 is mounted, from a mountinfo text (pure) or /proc/self/mountinfo.
std::optional<std::filesystem::path> find_cgroup2_mount(std::string_view mountinfo);
std::optional<std::filesystem::path> cgroup2_mount();

// A cgroup created for one test and removed, with every process in it killed, at the end.
class ScratchCgroup {
 public:
  // mkdir `parent`/`name`; throws if that fails (the caller checked it may).
  ScratchCgroup(const std::filesystem::path& parent, std::string_view name);
  ~ScratchCgroup();
  ScratchCgroup(const ScratchCgroup&) = delete;
  ScratchCgroup& operator=(const ScratchCgroup&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t id() const;  // the inode number, which is the id BPF sees
  void write(std::string_view file, std::string_view content) const;  // throws on failure
  std::string read(std::string_view file) const;
  std::uint64_t usage_usec() const;  // cpu.stat usage_usec

  // Forks a process that moves itself into this cgroup, then runs `work` and exits; killed
  // (SIGKILL) at destruction at the latest.
  pid_t spawn(const std::function<void()>& work);
  // Waits for a child from spawn(); its raw wait status.
  int wait(pid_t pid);

 private:
  std::filesystem::path path_;
  std::vector<pid_t> children_;
};

// Workloads for spawn().
void spin_forever();
// Busy for `busy` out of every `period`, sleeping the rest, forever.
void duty_cycle(std::chrono::microseconds busy, std::chrono::microseconds period);

}  // namespace ebb::testing
