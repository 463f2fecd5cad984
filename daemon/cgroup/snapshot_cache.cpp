#include "daemon/cgroup/snapshot_cache.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <optional>

namespace ebb::cgroup {

using namespace files;

namespace {

constexpr FileIndex kFast[2] = {kCpuStat, kMemoryCurrent};
constexpr FileSet kFastFiles = bit(kCpuStat) | bit(kMemoryCurrent);
constexpr FileSet kSlowFiles = bit(kMemoryStat) | bit(kCpuPressure) | bit(kMemoryPressure);
constexpr FileSet kRareFiles = kAllFiles & ~kFastFiles & ~kSlowFiles;
constexpr FileSet kEventFiles = bit(kMemoryEvents) | bit(kMemoryEventsLocal);
// The kernel sends a cgroup file's change notifications at most every 10 ms
// (CGROUP_FILE_NOTIFY_MIN_INTV), so looking more often than that finds nothing new.
constexpr auto kCollectInterval = std::chrono::milliseconds(10);
// A cgroup not snapshotted for this long is no longer managed: its descriptors go back to the
// budget. Checked once a second.
constexpr auto kUnusedFor = std::chrono::seconds(10);
constexpr auto kEvictInterval = std::chrono::seconds(1);
// New cgroups, typically all adopted in one tick, get their first refresh spread over this many
// phases of the period, so that the slow reads do not all land in the same tick.
constexpr int kRefreshPhases = 10;

// For error messages of the reads that need no directory.
std::string path_of(const std::filesystem::path& root, std::string_view cgroup, const char* file) {
  const auto dir = cgroup_dir(root, cgroup);
  return dir ? file_path(*dir, file) : file;
}

// A PSI average above zero goes on decaying after the stalls stop (the kernel recomputes it
// every 2 s), so a quiet cgroup's pressure files are still worth the slow refresh.
bool pressure_decaying(const Snapshot& s) {
  for (const auto* p : {&s.cpu_pressure, &s.memory_pressure}) {
    if (*p && ((*p)->some.avg10 > 0 || ((*p)->full && (*p)->full->avg10 > 0))) return true;
  }
  return false;
}

}  // namespace

ReadCadence ReadCadence::daemon() {
  ReadCadence cadence;
  cadence.slow_refresh = std::chrono::seconds(1);
  cadence.rare_refresh = std::chrono::seconds(10);
  // Half of what the process may open: PSI triggers (two per cgroup), the BPF maps and the
  // sockets need the rest. Past the budget, cpu.stat and memory.current are opened per read.
  rlimit limit{};
  cadence.max_open_files =
      ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? limit.rlim_cur / 2 : 512;
  return cadence;
}

SnapshotCache::SnapshotCache(std::filesystem::path root, ReadCadence cadence)
    : root_(std::move(root)),
      cadence_(cadence),
      // Without inotify memory.events changes wait for the refresh period, which is still correct.
      inotify_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}

Result<Snapshot> SnapshotCache::snapshot(std::string_view cgroup, Freshness freshness) {
  const auto now = Clock::now();
  collect_notifications(now);
  evict_unused(now);
  auto [it, first] = entries_.try_emplace(std::string(cgroup));
  auto result = read(it->first, it->second, first, freshness, now);
  // The next snapshot starts over from a whole read, as a fresh CgroupFs would.
  if (!result) forget(it);
  return result;
}

void SnapshotCache::wrote(std::string_view cgroup, std::string_view file) {
  const auto it = entries_.find(std::string(cgroup));
  if (it == entries_.end()) return;
  for (unsigned i = 0; i < kFileCount; ++i) {
    if (kSnapshotFiles[i].name == file) it->second.stale |= bit(FileIndex(i));
  }
}

void SnapshotCache::forget(std::string_view cgroup) {
  if (const auto it = entries_.find(std::string(cgroup)); it != entries_.end()) forget(it);
}

Result<Snapshot> SnapshotCache::read(const std::string& cgroup, Entry& entry, bool first, Freshness freshness,
                                     Clock::time_point now) {
  const bool all = first || freshness == Freshness::fresh;
  const bool slow_due = now - entry.refreshed_at >= cadence_.slow_refresh;
  const bool rare = all || now - entry.rarely_refreshed_at >= std::max(cadence_.rare_refresh, cadence_.slow_refresh);
  const bool quiet = !all && freshness == Freshness::quiet;
  const bool fast = !quiet || now - entry.fast_read_at >= cadence_.slow_refresh;
  const bool refresh = all || (slow_due && (!quiet || rare || pressure_decaying(entry.last)));
  FileSet due = entry.stale | (refresh ? kSlowFiles : 0) | (rare ? kRareFiles : 0);
  for (int k = 0; k < 2 && fast; ++k) {
    if (!entry.fast[k] && (refresh || !(entry.missing & bit(kFast[k])))) due |= bit(kFast[k]);
  }
  Snapshot s = first ? Snapshot{} : entry.last;
  s.path = cgroup;
  s.taken_at = now;
  entry.used_at = now;

  std::optional<OpenCgroup> open;
  if (due) {
    auto opened = open_cgroup(root_, cgroup);
    if (!opened) return opened.error();
    open = std::move(*opened);
    if (first) s.id = open->id;
    if (open->id != s.id) return system_error("cgroup was recreated", open->dir, ENOENT, cgroup);
    for (int k = 0; k < 2; ++k) {
      if (entry.fast[k] || !(due & bit(kFast[k])) || open_files_ >= cadence_.max_open_files) continue;
      Fd fd(::openat(open->fd.get(), kSnapshotFiles[kFast[k]].name, O_RDONLY | O_CLOEXEC));
      if (!fd) continue;  // read_files tells a missing file from an unreadable one
      entry.fast[k] = std::move(fd);
      ++open_files_;
      due &= ~bit(kFast[k]);
    }
  }
  for (int k = 0; k < 2 && fast; ++k) {
    if (!entry.fast[k]) continue;
    const auto& file = kSnapshotFiles[kFast[k]];
    // kernfs answers ENODEV once the cgroup is removed; a descriptor outlives the directory.
    if (const int err = pread_all(entry.fast[k].get(), buffer_); err != 0)
      return system_error(std::string("cannot read ") + file.name, path_of(root_, cgroup, file.name), err, cgroup);
    if (auto error = file.store(&buffer_, s)) return malformed(*error, file.name, path_of(root_, cgroup, file.name), cgroup);
  }
  if (open) {
    FileSet missing = 0;
    if (auto error = read_files(*open, due, s, buffer_, missing)) return *error;
    entry.missing = (entry.missing & ~due) | missing;
    entry.stale = 0;
    if (refresh) entry.refreshed_at = now;
    if (rare) entry.rarely_refreshed_at = now;
    if (first) {
      const auto phase = static_cast<int>(entries_.size() % kRefreshPhases);
      entry.refreshed_at -= cadence_.slow_refresh * phase / kRefreshPhases;
      entry.rarely_refreshed_at -= cadence_.rare_refresh * phase / kRefreshPhases;
    }
    if (inotify_ && entry.events_watch < 0 && !(entry.missing & bit(kMemoryEvents))) {
      const auto path = file_path(open->dir, kSnapshotFiles[kMemoryEvents].name);
      entry.events_watch = ::inotify_add_watch(inotify_.get(), path.c_str(), IN_MODIFY);
      if (entry.events_watch >= 0) watched_[entry.events_watch] = cgroup;
    }
  }
  if (fast) {
    entry.fast_read_at = now;
    s.cpu_stat_at = now;
    // Quiet cgroups adopted together should not all come due in the same tick either.
    if (first) entry.fast_read_at -= cadence_.slow_refresh * static_cast<int>(entries_.size() % kRefreshPhases) / kRefreshPhases;
  }
  entry.last = s;
  return s;
}

void SnapshotCache::forget(std::unordered_map<std::string, Entry>::iterator it) {
  for (const auto& fd : it->second.fast) open_files_ -= fd ? 1 : 0;
  if (it->second.events_watch >= 0) {
    ::inotify_rm_watch(inotify_.get(), it->second.events_watch);
    watched_.erase(it->second.events_watch);
  }
  entries_.erase(it);
}

void SnapshotCache::collect_notifications(Clock::time_point now) {
  if (!inotify_ || now - collected_at_ < kCollectInterval) return;
  collected_at_ = now;
  alignas(inotify_event) char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(inotify_.get(), buffer, sizeof buffer);
    if (n <= 0) return;  // EAGAIN: nothing (more) to collect
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_Q_OVERFLOW) {
        for (auto& [path, entry] : entries_) entry.stale |= kEventFiles;
        continue;
      }
      const auto watch = watched_.find(event->wd);
      if (watch == watched_.end()) continue;
      const auto entry = entries_.find(watch->second);
      if (event->mask & IN_IGNORED) {  // the file is gone, and the watch with it
        if (entry != entries_.end()) entry->second.events_watch = -1;
        watched_.erase(watch);
      } else if (entry != entries_.end()) {
        entry->second.stale |= kEventFiles;
      }
    }
  }
}

void SnapshotCache::evict_unused(Clock::time_point now) {
  if (now - evicted_at_ < kEvictInterval) return;
  evicted_at_ = now;
  const auto unused_for = std::max<Clock::duration>(kUnusedFor, 10 * cadence_.slow_refresh);
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto next = std::next(it);
    if (now - it->second.used_at > unused_for) forget(it);
    it = next;
  }
}

}  // namespace ebb::cgroup
