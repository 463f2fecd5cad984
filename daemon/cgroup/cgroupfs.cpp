// CgroupFs: the I/O half. Plain open/read/write on small kernfs files; every path is built
// below the injected root.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "daemon/cgroup/cgroup.h"

namespace ebb::cgroup {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_;
};

// Reads a whole file into `out` with read(2); returns 0 or the errno. Every snapshot reads a
// dozen files of a few KiB at most, so this avoids the per-file cost of iostreams.
int read_all_at(int dirfd, const char* name, std::string& out) {
  const Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  std::size_t used = 0;
  out.resize(4096);
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    const ssize_t n = ::read(fd.get(), out.data() + used, out.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return 0;
}

// The cgroup's directory below the root. A leading '/' is accepted (/proc/PID/cgroup writes
// paths that way); '..' is refused so that no access leaves the root.
Result<std::string> cgroup_dir(const std::filesystem::path& root, std::string_view cgroup) {
  const std::string original(cgroup);
  while (!cgroup.empty() && cgroup.front() == '/') cgroup.remove_prefix(1);
  std::string dir = root.string();
  if (cgroup.empty()) return dir;
  for (std::string_view rest = cgroup; !rest.empty();) {
    const auto slash = rest.find('/');
    if (rest.substr(0, slash) == "..") return system_error("cgroup path leaves the cgroup root", "", EINVAL, original);
    rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash + 1);
  }
  dir += '/';
  dir += cgroup;
  return dir;
}

std::string file_path(const std::string& dir, std::string_view file) { return dir + "/" + std::string(file); }

// A file missing from a cgroup directory means either that its controller is not enabled for
// the cgroup (EOPNOTSUPP, so that Error::vanished() stays false) or that the cgroup is gone.
Error missing_file_error(const std::string& dir, std::string_view file, std::string_view cgroup) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return system_error("cgroup vanished", dir, errno, std::string(cgroup));
  return system_error(std::string(file) + " is absent: its controller is not enabled for this cgroup",
                      file_path(dir, file), EOPNOTSUPP, std::string(cgroup));
}

// Gives a pure parser's error the file and cgroup it came from.
Error malformed(Error error, std::string_view file, std::string path, std::string_view cgroup) {
  error.message = "malformed " + std::string(file) + ": " + error.message;
  error.path = std::move(path);
  error.cgroup = std::string(cgroup);
  return error;
}

template <typename T>
Result<T> read_parsed(const CgroupFs& fs, std::string_view cgroup, std::string_view file,
                      Result<T> (*parse)(std::string_view)) {
  auto text = fs.read_file(cgroup, file);
  if (!text) return text.error();
  auto parsed = parse(*text);
  if (parsed) return parsed;
  const auto dir = cgroup_dir(fs.root(), cgroup);
  return malformed(parsed.error(), file, file_path(dir.value(), file), cgroup);
}

std::string rejection_hint(int errno_value) {
  switch (errno_value) {
    case EINVAL:
      return ": the kernel rejected the value as invalid or out of range";
    case ERANGE:
      return ": the value is outside the range the kernel accepts";
    case EBUSY:
      return ": the kernel cannot apply it now (it conflicts with current usage or another limit)";
    default:
      return "";
  }
}

}  // namespace

CgroupFs::CgroupFs(std::filesystem::path root) : root_(std::move(root)) {}

Result<std::string> CgroupFs::read_file(std::string_view cgroup, std::string_view file) const {
  const auto dir = cgroup_dir(root_, cgroup);
  if (!dir) return dir.error();
  const auto path = file_path(*dir, file);
  std::string out;
  const int err = read_all_at(AT_FDCWD, path.c_str(), out);
  if (err == ENOENT) return missing_file_error(*dir, file, cgroup);
  if (err != 0) return system_error("cannot read " + std::string(file), path, err, std::string(cgroup));
  return out;
}

// On cgroup v2 the cgroup id (the kernel's cgroup_id(), which bpf_get_current_cgroup_id()
// returns) is the id of the directory's kernfs node, and since Linux 5.5 kernfs uses that id
// as the inode number wherever ino_t is 64-bit (include/linux/kernfs.h, kernfs_id_ino()). So
// st_ino of the directory is the id BPF sees, and a cgroup removed and recreated under the same
// name gets a new one.
Result<std::uint64_t> CgroupFs::cgroup_id(std::string_view cgroup) const {
  const auto dir = cgroup_dir(root_, cgroup);
  if (!dir) return dir.error();
  struct stat st {};
  if (::stat(dir->c_str(), &st) != 0) return system_error("cannot stat cgroup", *dir, errno, std::string(cgroup));
  if (!S_ISDIR(st.st_mode)) return system_error("not a cgroup directory", *dir, ENOTDIR, std::string(cgroup));
  return static_cast<std::uint64_t>(st.st_ino);
}

Result<Snapshot> CgroupFs::snapshot(std::string_view cgroup) const {
  const auto dir = cgroup_dir(root_, cgroup);
  if (!dir) return dir.error();
  // Files are opened relative to the directory so that the whole snapshot comes from the
  // cgroup whose id is recorded, even if another one takes its name meanwhile.
  const Fd dirfd(::open(dir->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return system_error("cannot open cgroup", *dir, errno, std::string(cgroup));
  struct stat st {};
  if (::fstat(dirfd.get(), &st) != 0) return system_error("cannot stat cgroup", *dir, errno, std::string(cgroup));

  Snapshot s;
  s.path = std::string(cgroup);
  s.id = st.st_ino;
  s.taken_at = std::chrono::steady_clock::now();

  std::string buffer;
  std::optional<Error> error;
  bool some_missing = false;
  auto load = [&](const char* file, auto parse, auto& field) {
    if (error) return;
    const int err = read_all_at(dirfd.get(), file, buffer);
    if (err == ENOENT) {
      some_missing = true;
      return;
    }
    // PSI disabled at boot (psi=0): the pressure files exist but refuse reads.
    if (err == EOPNOTSUPP) return;
    if (err != 0) {
      error = system_error(std::string("cannot read ") + file, file_path(*dir, file), err, s.path);
      return;
    }
    auto parsed = parse(buffer);
    if (!parsed) {
      error = malformed(parsed.error(), file, file_path(*dir, file), s.path);
      return;
    }
    field = std::move(*parsed);
  };
  load("cpu.stat", parse_cpu_stat, s.cpu_stat);
  load("cpu.max", parse_cpu_max, s.cpu_max);
  load("cpu.weight", parse_cpu_weight, s.cpu_weight);
  load("cpu.pressure", parse_pressure, s.cpu_pressure);
  load("memory.current", parse_memory_value, s.memory_current);
  load("memory.high", parse_memory_value, s.memory_high);
  load("memory.max", parse_memory_value, s.memory_max);
  load("memory.events", parse_memory_events, s.memory_events);
  load("memory.events.local", parse_memory_events, s.memory_events_local);
  load("memory.stat", parse_memory_stat, s.memory_stat);
  load("memory.pressure", parse_pressure, s.memory_pressure);
  load("io.pressure", parse_pressure, s.io_pressure);
  if (error) return *error;

  // A missing file is a disabled controller unless the cgroup was removed under us (files of
  // a removed kernfs directory disappear) or replaced by a new one of the same name.
  if (some_missing) {
    struct stat now {};
    if (::stat(dir->c_str(), &now) != 0) return system_error("cgroup vanished", *dir, errno, s.path);
    if (now.st_ino != st.st_ino) return system_error("cgroup was recreated during the snapshot", *dir, ENOENT, s.path);
  }
  return s;
}

Result<CpuMax> CgroupFs::read_cpu_max(std::string_view cgroup) const {
  return read_parsed(*this, cgroup, "cpu.max", parse_cpu_max);
}

Result<std::uint32_t> CgroupFs::read_cpu_weight(std::string_view cgroup) const {
  return read_parsed(*this, cgroup, "cpu.weight", parse_cpu_weight);
}

Result<std::uint64_t> CgroupFs::read_memory_high(std::string_view cgroup) const {
  return read_parsed(*this, cgroup, "memory.high", parse_memory_value);
}

Result<std::uint64_t> CgroupFs::read_memory_max(std::string_view cgroup) const {
  return read_parsed(*this, cgroup, "memory.max", parse_memory_value);
}

Result<std::set<std::string>> CgroupFs::subtree_control(std::string_view cgroup) const {
  auto text = read_file(cgroup, "cgroup.subtree_control");
  if (!text) return text.error();
  return parse_controllers(*text);
}

Status CgroupFs::write_cpu_max(std::string_view cgroup, const CpuMax& value) {
  return write_file(cgroup, "cpu.max", format_cpu_max(value));
}

Status CgroupFs::write_cpu_weight(std::string_view cgroup, std::uint32_t weight) {
  return write_file(cgroup, "cpu.weight", std::to_string(weight));
}

Status CgroupFs::write_memory_high(std::string_view cgroup, std::uint64_t bytes) {
  return write_file(cgroup, "memory.high", format_memory_value(bytes));
}

Status CgroupFs::write_memory_max(std::string_view cgroup, std::uint64_t bytes) {
  return write_file(cgroup, "memory.max", format_memory_value(bytes));
}

// One write(2) per value: kernfs takes a whole value per write, as `echo VALUE > FILE` does.
Status CgroupFs::write_file(std::string_view cgroup, std::string_view file, std::string_view content) {
  const auto dir = cgroup_dir(root_, cgroup);
  if (!dir) return dir.error();
  const auto path = file_path(*dir, file);
  const Fd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd && errno == ENOENT) return missing_file_error(*dir, file, cgroup);
  if (!fd) return system_error("cannot open " + std::string(file) + " for writing", path, errno, std::string(cgroup));
  const std::string line = std::string(content) + "\n";
  const ssize_t n = ::write(fd.get(), line.data(), line.size());
  if (n < 0) {
    const int err = errno;
    return system_error("cannot write '" + std::string(content) + "' to " + std::string(file) + rejection_hint(err),
                        path, err, std::string(cgroup));
  }
  if (static_cast<std::size_t>(n) != line.size())
    return system_error("short write of '" + std::string(content) + "' to " + std::string(file), path, EIO,
                        std::string(cgroup));
  return ok_status();
}

}  // namespace ebb::cgroup
