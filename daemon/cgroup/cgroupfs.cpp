// CgroupFs: the I/O half. Plain open/read/write on small kernfs files; every path is built
// below the injected root. What a ReadCadence keeps between snapshots is in snapshot_cache.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "daemon/cgroup/cgroup.h"
#include "daemon/cgroup/files.h"
#include "daemon/cgroup/snapshot_cache.h"

namespace ebb::cgroup {

using namespace files;

namespace {

// A file missing from a cgroup directory means either that its controller is not enabled for
// the cgroup (EOPNOTSUPP, so that Error::vanished() stays false) or that the cgroup is gone.
Error missing_file_error(const std::string& dir, std::string_view file, std::string_view cgroup) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return system_error("cgroup vanished", dir, errno, std::string(cgroup));
  return system_error(std::string(file) + " is absent: its controller is not enabled for this cgroup",
                      file_path(dir, file), EOPNOTSUPP, std::string(cgroup));
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

CgroupFs::CgroupFs(std::filesystem::path root, ReadCadence cadence)
    : root_(std::move(root)), cache_(cadence.caches() ? std::make_unique<SnapshotCache>(root_, cadence) : nullptr) {}
CgroupFs::~CgroupFs() = default;
CgroupFs::CgroupFs(CgroupFs&&) noexcept = default;
CgroupFs& CgroupFs::operator=(CgroupFs&&) noexcept = default;

void CgroupFs::forget(std::string_view cgroup) {
  if (cache_) cache_->forget(cgroup);
}

std::size_t CgroupFs::open_files() const { return cache_ ? cache_->open_files() : 0; }

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

Result<Snapshot> CgroupFs::snapshot(std::string_view cgroup, Freshness freshness) {
  if (cache_) return cache_->snapshot(cgroup, freshness);
  auto open = open_cgroup(root_, cgroup);
  if (!open) return open.error();
  Snapshot s;
  s.path = std::string(cgroup);
  s.id = open->id;
  s.taken_at = std::chrono::steady_clock::now();
  s.cpu_stat_at = s.taken_at;
  std::string buffer;
  FileSet missing = 0;
  if (auto error = read_files(*open, kAllFiles, s, buffer, missing)) return *error;
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
  if (cache_) cache_->wrote(cgroup, file);
  return ok_status();
}

}  // namespace ebb::cgroup
