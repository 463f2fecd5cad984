#pragma once
// Internal to daemon/cgroup: what CgroupFs::snapshot() keeps between snapshots when a
// ReadCadence asks for it (see cgroup.h). Files are re-read when due (cpu.stat and
// memory.current at every snapshot unless it is a quiet one) and their fields otherwise carry
// the value last read, never one made up.
#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/cgroup/cgroup.h"
#include "daemon/cgroup/files.h"

namespace ebb::cgroup {

class SnapshotCache {
 public:
  SnapshotCache(std::filesystem::path root, ReadCadence cadence);
  Result<Snapshot> snapshot(std::string_view cgroup, Freshness freshness);
  // This process wrote `file` of `cgroup`: the next snapshot reads it back (the kernel may have
  // rounded the value, so the written text is not what the file holds).
  void wrote(std::string_view cgroup, std::string_view file);
  void forget(std::string_view cgroup);
  std::size_t open_files() const { return open_files_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Snapshot last;
    files::Fd fast[2];              // cpu.stat, memory.current, kept open within the budget
    files::FileSet missing = 0;     // absent at the last read: not looked for until the refresh
    files::FileSet stale = 0;       // to re-read at the next snapshot whatever the time
    Clock::time_point fast_read_at; // of cpu.stat and memory.current
    Clock::time_point refreshed_at; // of the slow files
    Clock::time_point rarely_refreshed_at;
    Clock::time_point used_at;
    int events_watch = -1;          // inotify watch on memory.events
  };
  Result<Snapshot> read(const std::string& cgroup, Entry& entry, bool first, Freshness freshness, Clock::time_point now);
  void forget(std::unordered_map<std::string, Entry>::iterator it);
  void collect_notifications(Clock::time_point now);
  void evict_unused(Clock::time_point now);

  std::filesystem::path root_;
  ReadCadence cadence_;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t open_files_ = 0;
  files::Fd inotify_;
  std::unordered_map<int, std::string> watched_;  // watch descriptor -> cgroup
  Clock::time_point collected_at_, evicted_at_;
  std::string buffer_;
};

}  // namespace ebb::cgroup
