#pragma once
// A PSI trigger on one cgroup: the kernel signals POLLPRI on the fd when tasks of the cgroup
// were stalled on the resource for `stall` within any `window`. The second event source next
// to the eBPF ring buffer, and the only one when BPF cannot load. Asio waits for POLLPRI with
// posix::stream_descriptor::async_wait(wait_error); POLLERR means the cgroup was removed.
#include <chrono>
#include <filesystem>

#include "daemon/common/error.h"

namespace ebb::probes {

enum class PressureResource { cpu, memory, io };
const char* pressure_file(PressureResource resource);  // "cpu.pressure", ...

// The line written to the pressure file, "some <stall_us> <window_us>"; an Error (EINVAL) for
// values the kernel would reject: a window outside [500ms, 10s] or a stall longer than it.
Result<std::string> format_psi_trigger(std::chrono::microseconds stall, std::chrono::microseconds window);

class PsiTrigger {
 public:
  // Opens <cgroup_dir>/<resource>.pressure and arms the trigger. Errors carry the errno:
  // ENOENT when the cgroup or its controller file is absent, EACCES without permission,
  // EINVAL on a kernel without triggers or for rejected values.
  static Result<PsiTrigger> open(const std::filesystem::path& cgroup_dir, PressureResource resource,
                                 std::chrono::microseconds stall, std::chrono::microseconds window);
  PsiTrigger(PsiTrigger&& other) noexcept;
  PsiTrigger& operator=(PsiTrigger&& other) noexcept;
  PsiTrigger(const PsiTrigger&) = delete;
  PsiTrigger& operator=(const PsiTrigger&) = delete;
  ~PsiTrigger();

  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }
  // Whether the trigger fired, waiting at most `timeout` (zero: just look). An Error when the
  // file reports POLLERR, i.e. the cgroup is gone.
  Result<bool> wait(std::chrono::milliseconds timeout) const;

 private:
  PsiTrigger(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::filesystem::path path_;
};

}  // namespace ebb::probes
