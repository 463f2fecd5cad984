#pragma once
// The original limits of every cgroup ebbd adopted, kept in <state_dir>/originals.json and
// written before the first limit change, so SIGTERM (or the next start after a crash) can put
// them back. A cgroup recreated under the same path has a new id and gets fresh originals.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "daemon/cgroup/cgroup.h"
#include "daemon/common/error.h"

namespace ebb::control {

struct OriginalLimits {
  std::uint64_t cgroup_id = 0;
  cgroup::CpuMax cpu_max;
  std::uint64_t memory_high = cgroup::kUnlimited;
  std::uint64_t memory_max = cgroup::kUnlimited;
  bool operator==(const OriginalLimits&) const = default;
};

class StateStore {
 public:
  // Loads the existing file, if any. A corrupt file is an error: silently starting afresh
  // would let the managed limits be taken for originals.
  static Result<StateStore> open(std::filesystem::path dir);

  const OriginalLimits* find(const std::string& cgroup) const;
  const std::map<std::string, OriginalLimits>& all() const { return originals_; }

  // Keeps the first originals seen for a cgroup id. The in-memory record is kept even when
  // persisting fails (full disk): control goes on, and the error says why.
  Status remember(const std::string& cgroup, const OriginalLimits& limits);
  Status forget(const std::string& cgroup);
  Status persist() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  explicit StateStore(std::filesystem::path dir);
  std::filesystem::path dir_;
  std::filesystem::path file_;
  std::map<std::string, OriginalLimits> originals_;
};

// Writes `content` to `file` atomically (temp file, fsync, rename), creating the directory.
Status write_file_atomically(const std::filesystem::path& file, const std::string& content);

}  // namespace ebb::control
