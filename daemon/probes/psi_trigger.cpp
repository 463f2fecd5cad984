#include "daemon/probes/psi_trigger.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace ebb::probes {

const char* pressure_file(PressureResource resource) {
  switch (resource) {
    case PressureResource::cpu: return "cpu.pressure";
    case PressureResource::memory: return "memory.pressure";
    case PressureResource::io: return "io.pressure";
  }
  return "";
}

Result<std::string> format_psi_trigger(std::chrono::microseconds stall, std::chrono::microseconds window) {
  using namespace std::chrono_literals;
  // The limits the kernel enforces in psi_trigger_create(); checked here to say why.
  if (window < 500ms || window > 10s) {
    return Error{"PSI trigger window must be within 500ms..10s, got " + std::to_string(window.count()) + "us",
                 {}, {}, EINVAL};
  }
  if (stall <= 0us || stall > window) {
    return Error{"PSI trigger stall must be positive and at most the window, got " +
                     std::to_string(stall.count()) + "us",
                 {}, {}, EINVAL};
  }
  return "some " + std::to_string(stall.count()) + " " + std::to_string(window.count());
}

Result<PsiTrigger> PsiTrigger::open(const std::filesystem::path& cgroup_dir, PressureResource resource,
                                    std::chrono::microseconds stall, std::chrono::microseconds window) {
  auto line = format_psi_trigger(stall, window);
  const auto path = cgroup_dir / pressure_file(resource);
  if (!line) {
    auto error = line.error();
    error.path = path.string();
    return error;
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return system_error("opening PSI trigger", path.string(), errno);
  // The kernel wants the trigger and its terminating NUL in one write.
  const auto written = ::write(fd, line->c_str(), line->size() + 1);
  if (written < 0) {
    const int err = errno;
    ::close(fd);
    return system_error("arming PSI trigger \"" + *line + "\"", path.string(), err);
  }
  return PsiTrigger(fd, path);
}

PsiTrigger::PsiTrigger(PsiTrigger&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

PsiTrigger& PsiTrigger::operator=(PsiTrigger&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

PsiTrigger::~PsiTrigger() {
  if (fd_ >= 0) ::close(fd_);
}

Result<bool> PsiTrigger::wait(std::chrono::milliseconds timeout) const {
  pollfd pfd{fd_, POLLPRI, 0};
  const int n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (n < 0) return system_error("waiting for PSI trigger", path_.string(), errno);
  if (pfd.revents & (POLLERR | POLLNVAL)) return system_error("PSI trigger file gone", path_.string(), ENODEV);
  return (pfd.revents & POLLPRI) != 0;
}

}  // namespace ebb::probes
