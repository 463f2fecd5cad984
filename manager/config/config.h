#pragma once
// ebb-manager's configuration: TOML text -> ManagerConfig (parse, with every value checked and
// unknown keys reported with their line), and the cluster-cap schedule format.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/error.h"
#include "manager/core/manager.h"
#include "manager/etcd/replica.h"
#include "manager/tls/tls.h"

namespace ebb::manager {

struct ManagerConfig {
  std::string listen = "127.0.0.1:7070";
  Transport transport;  // [tls] files, or [manager] plaintext_loopback = true
  std::optional<std::filesystem::path> state_file;  // none: state is kept in memory only
  std::optional<etcd::EtcdOptions> etcd;             // [etcd]: one of several replicas (not with state_file)
  std::optional<std::filesystem::path> cap_schedule;
  ManagerOptions options;
};

Result<ManagerConfig> parse_manager_config(std::string_view toml_text, std::string_view source);
Result<ManagerConfig> load_manager_config(const std::filesystem::path& file);

// A daily cluster-cap schedule: one "HH:MM cores" line per change (UTC, "0" for no cap), in
// any order; '#' comments. The entry with the latest time not after now holds, wrapping to the
// previous day's last entry before the first.
struct CapChange {
  std::chrono::minutes at{0};  // since midnight
  double cpu_cores = 0;
};
Result<std::vector<CapChange>> parse_cap_schedule(std::string_view text, std::string_view source);
std::optional<double> cap_at(const std::vector<CapChange>& schedule, std::chrono::minutes since_midnight);

}  // namespace ebb::manager
