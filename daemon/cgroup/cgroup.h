#pragma once
// cgroup v2 access, rooted at an injected directory (the default /sys/fs/cgroup is chosen in
// main only). Parsing is pure (parse_* take file text); CgroupFs does the I/O.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "daemon/common/error.h"

namespace ebb::cgroup {

inline constexpr std::uint64_t kUnlimited = std::numeric_limits<std::uint64_t>::max();  // "max"

struct CpuStat {
  std::uint64_t usage_usec = 0, user_usec = 0, system_usec = 0;
  std::uint64_t nr_periods = 0, nr_throttled = 0, throttled_usec = 0;
};

struct CpuMax {
  std::optional<std::uint64_t> quota_usec;  // nullopt: "max"
  std::uint64_t period_usec = 100000;
  bool operator==(const CpuMax&) const = default;
};

struct PressureLine {
  double avg10 = 0, avg60 = 0, avg300 = 0;
  std::uint64_t total_usec = 0;
};
struct Pressure {
  PressureLine some;
  std::optional<PressureLine> full;  // cpu.pressure has "full" only on newer kernels
};

struct MemoryEvents {
  std::uint64_t low = 0, high = 0, max = 0, oom = 0, oom_kill = 0, oom_group_kill = 0;
};

struct MemoryStat {
  std::uint64_t anon = 0, file = 0, kernel = 0, shmem = 0;
  std::uint64_t active_anon = 0, inactive_anon = 0, active_file = 0, inactive_file = 0;
  std::uint64_t workingset_refault_anon = 0, workingset_refault_file = 0;
  std::uint64_t pgscan = 0, pgsteal = 0;
  // What reclaim would hurt: anonymous memory plus the active page cache.
  std::uint64_t working_set() const { return anon + active_file; }
};

// Pure parsers: text of the file in, struct or an Error naming the bad line out.
Result<CpuStat> parse_cpu_stat(std::string_view text);
Result<CpuMax> parse_cpu_max(std::string_view text);
Result<std::uint32_t> parse_cpu_weight(std::string_view text);
Result<std::uint64_t> parse_memory_value(std::string_view text);  // "max" -> kUnlimited
Result<MemoryEvents> parse_memory_events(std::string_view text);
Result<MemoryStat> parse_memory_stat(std::string_view text);
Result<Pressure> parse_pressure(std::string_view text);
std::set<std::string> parse_controllers(std::string_view text);
std::string format_cpu_max(const CpuMax& value);
std::string format_memory_value(std::uint64_t bytes);

// Everything one tick needs from one cgroup. A file that is absent because its controller is
// not enabled leaves its field empty; that is not an error.
struct Snapshot {
  std::string path;       // relative to the root, e.g. "ebb.slice/web.service"
  std::uint64_t id = 0;   // cgroup id as BPF sees it (the directory's inode number)
  std::chrono::steady_clock::time_point taken_at;
  // When cpu.stat was read: taken_at, or earlier when a ReadCadence carried it (CPU rates are
  // computed over the interval between two reads of the file, not between two snapshots).
  std::chrono::steady_clock::time_point cpu_stat_at;
  std::optional<CpuStat> cpu_stat;
  std::optional<CpuMax> cpu_max;
  std::optional<std::uint32_t> cpu_weight;
  std::optional<Pressure> cpu_pressure;
  std::optional<std::uint64_t> memory_current;
  std::optional<std::uint64_t> memory_high;  // kUnlimited for "max"
  std::optional<std::uint64_t> memory_max;   // kUnlimited for "max"
  std::optional<MemoryEvents> memory_events;
  std::optional<MemoryEvents> memory_events_local;
  std::optional<MemoryStat> memory_stat;
  std::optional<Pressure> memory_pressure;
  std::optional<Pressure> io_pressure;
};

// The side-effecting half, behind an interface so the control loop can be tested with a fake.
class LimitWriter {
 public:
  virtual ~LimitWriter() = default;
  virtual Status write_cpu_max(std::string_view cgroup, const CpuMax& value) = 0;
  virtual Status write_cpu_weight(std::string_view cgroup, std::uint32_t weight) = 0;
  virtual Status write_memory_high(std::string_view cgroup, std::uint64_t bytes) = 0;
  virtual Status write_memory_max(std::string_view cgroup, std::uint64_t bytes) = 0;
};

// How CgroupFs::snapshot() reads. The default (all zero) reads every file at every snapshot, as
// tools and tests want. ebbd, which snapshots the same cgroups every tick, uses daemon().
struct ReadCadence {
  // cpu.stat and memory.current are read at every snapshot. memory.stat, cpu.pressure and
  // memory.pressure are re-read when `slow_refresh` has passed since their last read (the
  // kernel recomputes the PSI averages only every 2 s). The rest, cpu.max, cpu.weight,
  // memory.high, memory.max (which ebbd writes itself), memory.events(.local) and io.pressure,
  // when `rare_refresh` has passed, and besides: a limit at the next snapshot after this
  // CgroupFs wrote it, memory.events after the kernel notified (inotify) a change. In between, a
  // snapshot carries the value last read. Zero: every file at every snapshot.
  std::chrono::milliseconds slow_refresh{0};
  std::chrono::milliseconds rare_refresh{0};  // at least slow_refresh
  // cpu.stat and memory.current stay open between snapshots, up to this many descriptors in
  // all, and are re-read with pread at offset 0 (kernfs generates the text anew); past the
  // budget they are opened per read.
  std::size_t max_open_files = 0;
  bool caches() const { return slow_refresh.count() > 0 || rare_refresh.count() > 0 || max_open_files > 0; }
  // 1 s and 10 s refreshes and half of RLIMIT_NOFILE's soft limit.
  static ReadCadence daemon();
};

// What one snapshot needs beyond the ReadCadence's schedule; without a cadence every file is
// read whatever is asked.
enum class Freshness {
  cadence,  // cpu.stat and memory.current now, the rest when due
  // The caller knows that none of the cgroup's tasks ran since the last snapshot (the eBPF CPU
  // counters did not move): cpu.stat and memory.current too only when slow_refresh has passed,
  // memory.stat and PSI then only while a pressure average is still decaying, else when
  // rare_refresh has passed. A limit written or a memory.events notification is still read
  // at once.
  quiet,
  fresh,  // every file now: an event-driven decision must not act on carried values
};

class SnapshotCache;

class CgroupFs final : public LimitWriter {
 public:
  explicit CgroupFs(std::filesystem::path root, ReadCadence cadence = {});
  ~CgroupFs() override;
  CgroupFs(CgroupFs&&) noexcept;
  CgroupFs& operator=(CgroupFs&&) noexcept;
  const std::filesystem::path& root() const { return root_; }

  // Reads the files of Snapshot (all of them, or as the ReadCadence says). Fails only when the
  // cgroup itself is gone (Error::vanished()) or a present file is malformed; a missing
  // controller file just leaves its field empty.
  Result<Snapshot> snapshot(std::string_view cgroup, Freshness freshness = Freshness::cadence);
  // The caller no longer snapshots `cgroup` (it was removed or deselected): what the ReadCadence
  // keeps for it, descriptors included, goes now rather than after 10 s unused.
  void forget(std::string_view cgroup);
  // Descriptors the ReadCadence keeps open now.
  std::size_t open_files() const;
  Result<std::uint64_t> cgroup_id(std::string_view cgroup) const;
  // Single-file readers and the writers: a file absent from a cgroup that still exists (its
  // controller is not enabled) is an Error with errno EOPNOTSUPP, so vanished() stays false;
  // a cgroup path containing ".." is refused with EINVAL.
  Result<CpuMax> read_cpu_max(std::string_view cgroup) const;
  Result<std::uint32_t> read_cpu_weight(std::string_view cgroup) const;
  Result<std::uint64_t> read_memory_high(std::string_view cgroup) const;
  Result<std::uint64_t> read_memory_max(std::string_view cgroup) const;
  // Controllers enabled for the children of `cgroup` ("" is the root).
  Result<std::set<std::string>> subtree_control(std::string_view cgroup) const;
  Result<std::string> read_file(std::string_view cgroup, std::string_view file) const;

  Status write_cpu_max(std::string_view cgroup, const CpuMax& value) override;
  Status write_cpu_weight(std::string_view cgroup, std::uint32_t weight) override;
  Status write_memory_high(std::string_view cgroup, std::uint64_t bytes) override;
  Status write_memory_max(std::string_view cgroup, std::uint64_t bytes) override;

 private:
  Status write_file(std::string_view cgroup, std::string_view file, std::string_view content);
  std::filesystem::path root_;
  std::unique_ptr<SnapshotCache> cache_;  // null without a ReadCadence
};

}  // namespace ebb::cgroup
