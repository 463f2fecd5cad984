#include "daemon/cgroup/files.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

namespace ebb::cgroup::files {
namespace {

// Reads from offset 0 to the end with pread(2); returns 0 or the errno. Every snapshot reads a
// dozen files of a few KiB at most, so this avoids the per-file cost of iostreams. A read that
// returns less than asked is the end: kernfs (seq_file) fills the buffer unless the text ends,
// and so does a regular file; that spares the extra read(2) that would return 0.
int read_from_start(int fd, std::string& out) {
  std::size_t used = 0;
  if (out.size() < 4096) out.resize(4096);
  for (;;) {
    if (used == out.size()) out.resize(out.size() * 2);
    const std::size_t asked = out.size() - used;
    const ssize_t n = ::pread(fd, out.data() + used, asked, static_cast<off_t>(used));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    used += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < asked) break;
  }
  out.resize(used);
  return 0;
}

template <auto Member, auto Parse>
std::optional<Error> store_field(const std::string* text, Snapshot& into) {
  if (!text) {
    (into.*Member).reset();
    return std::nullopt;
  }
  auto parsed = Parse(*text);
  if (!parsed) return parsed.error();
  into.*Member = std::move(*parsed);
  return std::nullopt;
}

}  // namespace

const std::array<SnapshotFile, kFileCount> kSnapshotFiles{{
    {"cpu.stat", store_field<&Snapshot::cpu_stat, parse_cpu_stat>},
    {"cpu.max", store_field<&Snapshot::cpu_max, parse_cpu_max>},
    {"cpu.weight", store_field<&Snapshot::cpu_weight, parse_cpu_weight>},
    {"cpu.pressure", store_field<&Snapshot::cpu_pressure, parse_pressure>},
    {"memory.current", store_field<&Snapshot::memory_current, parse_memory_value>},
    {"memory.high", store_field<&Snapshot::memory_high, parse_memory_value>},
    {"memory.max", store_field<&Snapshot::memory_max, parse_memory_value>},
    {"memory.events", store_field<&Snapshot::memory_events, parse_memory_events>},
    {"memory.events.local", store_field<&Snapshot::memory_events_local, parse_memory_events>},
    {"memory.stat", store_field<&Snapshot::memory_stat, parse_memory_stat>},
    {"memory.pressure", store_field<&Snapshot::memory_pressure, parse_pressure>},
    {"io.pressure", store_field<&Snapshot::io_pressure, parse_pressure>},
}};

int read_all_at(int dirfd, const char* name, std::string& out) {
  const Fd fd(::openat(dirfd, name, O_RDONLY | O_CLOEXEC));
  if (!fd) return errno;
  return read_from_start(fd.get(), out);
}

int pread_all(int fd, std::string& out) { return read_from_start(fd, out); }

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

Error malformed(Error error, std::string_view file, std::string path, std::string_view cgroup) {
  error.message = "malformed " + std::string(file) + ": " + error.message;
  error.path = std::move(path);
  error.cgroup = std::string(cgroup);
  return error;
}

Result<OpenCgroup> open_cgroup(const std::filesystem::path& root, std::string_view cgroup) {
  auto dir = cgroup_dir(root, cgroup);
  if (!dir) return dir.error();
  OpenCgroup open{Fd(::open(dir->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)), std::move(*dir)};
  if (!open.fd) return system_error("cannot open cgroup", open.dir, errno, std::string(cgroup));
  struct stat st {};
  if (::fstat(open.fd.get(), &st) != 0) return system_error("cannot stat cgroup", open.dir, errno, std::string(cgroup));
  open.id = st.st_ino;
  return open;
}

std::optional<Error> read_files(const OpenCgroup& cgroup, FileSet which, Snapshot& into, std::string& buffer,
                                FileSet& missing) {
  FileSet absent = 0;
  for (unsigned i = 0; i < kFileCount; ++i) {
    if (!(which & bit(FileIndex(i)))) continue;
    const auto& file = kSnapshotFiles[i];
    const int err = read_all_at(cgroup.fd.get(), file.name, buffer);
    if (err == ENOENT) {
      absent |= bit(FileIndex(i));
      (void)file.store(nullptr, into);
      continue;
    }
    // PSI disabled at boot (psi=0): the pressure files exist but refuse reads.
    if (err == EOPNOTSUPP) continue;
    const auto path = [&] { return file_path(cgroup.dir, file.name); };
    if (err != 0) return system_error(std::string("cannot read ") + file.name, path(), err, into.path);
    if (auto error = file.store(&buffer, into)) return malformed(*error, file.name, path(), into.path);
  }
  // A missing file is a disabled controller unless the cgroup was removed under us (files of
  // a removed kernfs directory disappear) or replaced by a new one of the same name.
  if (absent) {
    struct stat now {};
    if (::stat(cgroup.dir.c_str(), &now) != 0) return system_error("cgroup vanished", cgroup.dir, errno, into.path);
    if (now.st_ino != cgroup.id)
      return system_error("cgroup was recreated during the snapshot", cgroup.dir, ENOENT, into.path);
  }
  missing |= absent;
  return std::nullopt;
}

}  // namespace ebb::cgroup::files
