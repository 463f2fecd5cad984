#pragma once
// Policies set through the API, kept in <state_dir>/policies.json so that they survive a
// restart of ebbd. Owned by the loop thread, like the Engine it feeds (set_api_overrides).
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/config/config.h"

namespace ebb::api {

class PolicyStore {
 public:
  // Loads the file if it exists. A malformed file is an error naming the entry: starting
  // without the policies an operator set would silently undo them.
  static Result<PolicyStore> open(const std::filesystem::path& state_dir);

  // In order of setting; a later entry wins where selectors overlap.
  const std::vector<config::Override>& overrides() const { return overrides_; }

  // Merges `settings` into the entry for `select` (replacing it when `reset`), writes the file
  // and only then changes what overrides() returns. Returns everything stored for `select`.
  Result<config::ContainerSettings> set(const std::string& select, const config::ContainerSettings& settings,
                                        bool reset);
  const std::filesystem::path& file() const { return file_; }

 private:
  explicit PolicyStore(std::filesystem::path file) : file_(std::move(file)) {}
  std::filesystem::path file_;
  std::vector<config::Override> overrides_;
};

}  // namespace ebb::api
