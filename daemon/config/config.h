#pragma once
// ebbd's configuration: TOML text -> plain structs (parse), checked (validate inside parse),
// then flags are layered on top by main. Errors name the key and the line.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/policy/policy.h"

namespace ebb::config {

enum class Mode { automatic, recommend, off };  // "auto": write limits; "recommend": decide only
const char* to_string(Mode mode);
std::optional<Mode> parse_mode(std::string_view text);
const char* to_string(policy::PriorityClass priority);
std::optional<policy::PriorityClass> parse_priority(std::string_view text);

// Per-container knobs; every field optional so that overrides can set only some of them.
struct ContainerSettings {
  std::optional<Mode> mode;
  std::optional<double> cpu_min_cores, cpu_max_cores;
  std::optional<std::uint64_t> memory_min_bytes, memory_max_bytes;
  std::optional<double> throttle_target;              // throttled fraction of periods
  std::optional<double> runq_latency_p99_target_us;
  std::optional<policy::PriorityClass> priority;
  std::optional<double> weight;                       // share within its priority class
  std::optional<std::string> group;                   // budget group for ebb-manager

  // Fields set in `over` replace those here.
  void merge(const ContainerSettings& over);
};

// The fully resolved settings of one container.
struct EffectiveSettings {
  Mode mode = Mode::automatic;
  policy::Bounds bounds;
  policy::Objective objective;
  policy::PriorityClass priority = policy::PriorityClass::burstable;
  double weight = 1.0;
  std::string group;
};

struct Override {
  std::string select;  // glob, as in [select]
  ContainerSettings settings;
};

enum class PolicyKind { learner, heuristic };
const char* to_string(PolicyKind kind);

struct Config {
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
  std::filesystem::path state_dir = "/var/lib/ebb";
  std::chrono::nanoseconds tick = std::chrono::milliseconds(200);
  bool dry_run = false;
  bool restore_on_exit = true;
  std::string log_level = "info";
  PolicyKind policy = PolicyKind::learner;
  std::optional<std::filesystem::path> decision_log;   // JSON lines, one per limit change
  double node_cpu_cores = 0;                           // 0: detect
  std::uint64_t node_memory_bytes = 0;                 // 0: detect
  bool probes = true;                                  // try to load the eBPF probes
  bool react_to_events = true;                         // decide at once on probe/PSI events
  std::chrono::nanoseconds event_min_interval = std::chrono::milliseconds(50);  // per container
  std::vector<std::string> select = {"ebb.slice/*"};
  ContainerSettings defaults;
  std::vector<Override> overrides;
  // API
  std::filesystem::path socket = "/run/ebb/ebbd.sock";
  std::optional<std::string> tcp_listen;       // "host:port", off by default
  std::optional<std::string> metrics_listen;   // "127.0.0.1:9464", off by default
};

inline constexpr std::chrono::nanoseconds kMinTick = std::chrono::milliseconds(50);
inline constexpr std::chrono::nanoseconds kMaxTick = std::chrono::seconds(10);

// Parses and validates TOML text. `source` names the file in error messages.
Result<Config> parse_config(std::string_view toml_text, std::string_view source);
Result<Config> load_config(const std::filesystem::path& file);
// Checks cross-field rules (also applied after flags are layered on).
Status validate(const Config& config);

// Defaults, then every matching override in file order.
EffectiveSettings resolve_settings(const Config& config, std::string_view cgroup_path,
                                   const ContainerSettings* api_override = nullptr);

}  // namespace ebb::config
