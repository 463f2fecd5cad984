#pragma once
// Internal to daemon/cgroup: descriptors, whole-file reads, cgroup paths and the table of the
// files a Snapshot is made of, shared by CgroupFs and its SnapshotCache.
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/cgroup/cgroup.h"

namespace ebb::cgroup::files {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Both return 0 or the errno. read_all_at opens `name` below `dirfd`, reads it whole and closes
// it; pread_all reads an open file from offset 0, which makes kernfs generate the text anew.
int read_all_at(int dirfd, const char* name, std::string& out);
int pread_all(int fd, std::string& out);

// The cgroup's directory below the root. A leading '/' is accepted (/proc/PID/cgroup writes
// paths that way); '..' is refused so that no access leaves the root.
Result<std::string> cgroup_dir(const std::filesystem::path& root, std::string_view cgroup);
std::string file_path(const std::string& dir, std::string_view file);
// Gives a pure parser's error the file and cgroup it came from.
Error malformed(Error error, std::string_view file, std::string path, std::string_view cgroup);

// The files of a Snapshot. `store` parses a file's text into its field, or empties the field
// when `text` is null (the file is absent: its controller is not enabled).
struct SnapshotFile {
  const char* name;
  std::optional<Error> (*store)(const std::string* text, Snapshot& into);
};
enum FileIndex : unsigned {
  kCpuStat, kCpuMax, kCpuWeight, kCpuPressure, kMemoryCurrent, kMemoryHigh, kMemoryMax,
  kMemoryEvents, kMemoryEventsLocal, kMemoryStat, kMemoryPressure, kIoPressure, kFileCount
};
extern const std::array<SnapshotFile, kFileCount> kSnapshotFiles;

using FileSet = std::uint32_t;  // bit i: kSnapshotFiles[i]
constexpr FileSet bit(FileIndex i) { return FileSet{1} << i; }
inline constexpr FileSet kAllFiles = (FileSet{1} << kFileCount) - 1;

// A cgroup directory held open, so that the files read through it all belong to the cgroup
// whose id was taken, even if another one takes its name meanwhile.
struct OpenCgroup {
  Fd fd;
  std::string dir;
  std::uint64_t id = 0;
};
Result<OpenCgroup> open_cgroup(const std::filesystem::path& root, std::string_view cgroup);

// Reads the files of `which` into `into`, leaving the other fields alone; `missing` gets the
// files that are absent. An error is a file that exists but cannot be read or is malformed, or
// the cgroup gone (Error::vanished()).
std::optional<Error> read_files(const OpenCgroup& cgroup, FileSet which, Snapshot& into, std::string& buffer,
                                FileSet& missing);

}  // namespace ebb::cgroup::files
