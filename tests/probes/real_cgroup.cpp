#include "tests/probes/real_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace ebb::testing {

std::optional<std::filesystem::path> find_cgroup2_mount(std::string_view mountinfo) {
  std::istringstream lines{std::string(mountinfo)};
  std::string line;
  while (std::getline(lines, line)) {
    // "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> ..."
    const auto dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line.substr(0, dash));
    std::string id, parent, dev, root, mount_point;
    if (fields >> id >> parent >> dev >> root >> mount_point) return mount_point;
  }
  return std::nullopt;
}

std::optional<std::filesystem::path> cgroup2_mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return find_cgroup2_mount(text.str());
}

ScratchCgroup::ScratchCgroup(const std::filesystem::path& parent, std::string_view name)
    : path_(parent / name) {
  std::error_code ec;
  std::filesystem::create_directory(path_, ec);
  if (ec) throw std::runtime_error("mkdir " + path_.string() + ": " + ec.message());
}

ScratchCgroup::~ScratchCgroup() {
  for (const pid_t pid : children_) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  // rmdir fails while the kernel still holds dying tasks' references for a moment.
  for (int attempt = 0; attempt < 100 && ::rmdir(path_.c_str()) != 0 && errno == EBUSY; ++attempt) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::uint64_t ScratchCgroup::id() const {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) throw std::runtime_error("stat " + path_.string());
  return st.st_ino;
}

void ScratchCgroup::write(std::string_view file, std::string_view content) const {
  std::ofstream out(path_ / file);
  out << content;
  out.flush();
  if (!out) throw std::runtime_error("write " + (path_ / file).string() + " <- " + std::string(content));
}

std::string ScratchCgroup::read(std::string_view file) const {
  std::ifstream in(path_ / file);
  if (!in) throw std::runtime_error("read " + (path_ / file).string());
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::uint64_t ScratchCgroup::usage_usec() const {
  std::istringstream stat(read("cpu.stat"));
  std::string key;
  std::uint64_t value = 0;
  while (stat >> key >> value) {
    if (key == "usage_usec") return value;
  }
  throw std::runtime_error("no usage_usec in " + (path_ / "cpu.stat").string());
}

pid_t ScratchCgroup::spawn(const std::function<void()>& work) {
  // The child reports over a pipe once it is in the cgroup, so that whatever the test measures
  // from now on sees all of its work.
  int joined[2];
  if (::pipe(joined) != 0) throw std::runtime_error("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork");
  if (pid == 0) {
    ::close(joined[0]);
    const std::string self = std::to_string(::getpid());
    const int fd = ::open((path_ / "cgroup.procs").c_str(), O_WRONLY);
    const char ok = (fd >= 0 && ::write(fd, self.data(), self.size()) > 0) ? 1 : 0;
    (void)!::write(joined[1], &ok, 1);
    if (!ok) ::_exit(126);
    ::close(fd);
    ::close(joined[1]);
    work();
    ::_exit(0);
  }
  ::close(joined[1]);
  children_.push_back(pid);
  char ok = 0;
  const bool reported = ::read(joined[0], &ok, 1) == 1;
  ::close(joined[0]);
  if (!reported || !ok) throw std::runtime_error("process could not join " + path_.string());
  return pid;
}

int ScratchCgroup::wait(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::erase(children_, pid);
  return status;
}

void spin_forever() {
  for (std::uint64_t n = 0;; ++n) asm volatile("" : : "r"(n));  // a loop the compiler keeps
}

void duty_cycle(std::chrono::microseconds busy, std::chrono::microseconds period) {
  using clock = std::chrono::steady_clock;
  for (;;) {
    const auto start = clock::now();
    while (clock::now() - start < busy) {
    }
    std::this_thread::sleep_until(start + period);
  }
}

}  // namespace ebb::testing
