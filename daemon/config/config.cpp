#include "daemon/config/config.h"

#include <fstream>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "daemon/common/duration.h"
#include "daemon/discovery/discovery.h"

namespace ebb::config {

const char* to_string(Mode mode) {
  switch (mode) {
    case Mode::automatic: return "auto";
    case Mode::recommend: return "recommend";
    case Mode::off: return "off";
  }
  return "?";
}

std::optional<Mode> parse_mode(std::string_view text) {
  if (text == "auto") return Mode::automatic;
  if (text == "recommend") return Mode::recommend;
  if (text == "off") return Mode::off;
  return std::nullopt;
}

const char* to_string(policy::PriorityClass priority) {
  switch (priority) {
    case policy::PriorityClass::guaranteed: return "guaranteed";
    case policy::PriorityClass::burstable: return "burstable";
    case policy::PriorityClass::best_effort: return "best-effort";
  }
  return "?";
}

std::optional<policy::PriorityClass> parse_priority(std::string_view text) {
  if (text == "guaranteed") return policy::PriorityClass::guaranteed;
  if (text == "burstable") return policy::PriorityClass::burstable;
  if (text == "best-effort") return policy::PriorityClass::best_effort;
  return std::nullopt;
}

const char* to_string(PolicyKind kind) { return kind == PolicyKind::learner ? "learner" : "heuristic"; }

void ContainerSettings::merge(const ContainerSettings& over) {
  auto take = [](auto& mine, const auto& theirs) {
    if (theirs) mine = theirs;
  };
  take(mode, over.mode);
  take(cpu_min_cores, over.cpu_min_cores);
  take(cpu_max_cores, over.cpu_max_cores);
  take(memory_min_bytes, over.memory_min_bytes);
  take(memory_max_bytes, over.memory_max_bytes);
  take(throttle_target, over.throttle_target);
  take(runq_latency_p99_target_us, over.runq_latency_p99_target_us);
  take(priority, over.priority);
  take(weight, over.weight);
  take(group, over.group);
}

namespace {

// Reads typed values out of a TOML table, remembering the first error with its location.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, std::string_view source)
      : table_(table), prefix_(std::move(prefix)), source_(source) {}

  std::optional<Error> error;

  void expect_only(std::initializer_list<std::string_view> keys) {
    const std::set<std::string_view> known(keys);
    for (const auto& [key, node] : table_) {
      if (!known.count(key.str())) fail(node, "unknown key '" + qualified(key.str()) + "'");
    }
  }

  template <typename T>
  void read(std::string_view key, T& out) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (auto v = node->value<bool>()) out = *v;
      else fail(*node, qualified(key) + " must be true or false");
    } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::filesystem::path>) {
      if (auto v = node->value<std::string>()) out = *v;
      else fail(*node, qualified(key) + " must be a string");
    }
  }

  void read_number(std::string_view key, std::optional<double>& out, double min, double max) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    auto v = node->value<double>();
    if (!v) return fail(*node, qualified(key) + " must be a number");
    if (*v < min || *v > max) {
      std::ostringstream msg;
      msg << qualified(key) << " = " << *v << " is out of range [" << min << ", " << max << "]";
      return fail(*node, msg.str());
    }
    out = *v;
  }

  void read_bytes(std::string_view key, std::optional<std::uint64_t>& out) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    if (auto n = node->value<std::int64_t>()) {
      if (*n < 0) return fail(*node, qualified(key) + " must not be negative");
      out = static_cast<std::uint64_t>(*n);
      return;
    }
    auto s = node->value<std::string>();
    if (!s) return fail(*node, qualified(key) + " must be a size like \"512M\" or a number of bytes");
    auto parsed = parse_bytes(*s);
    if (!parsed) return fail(*node, qualified(key) + ": " + parsed.error().message);
    out = *parsed;
  }

  void read_duration(std::string_view key, std::chrono::nanoseconds& out) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    auto s = node->value<std::string>();
    if (!s) return fail(*node, qualified(key) + " must be a duration string like \"200ms\"");
    auto parsed = parse_duration(*s);
    if (!parsed) return fail(*node, qualified(key) + ": " + parsed.error().message);
    out = *parsed;
  }

  template <typename Enum>
  void read_enum(std::string_view key, std::optional<Enum>& out, std::optional<Enum> (*parse)(std::string_view),
                 std::string_view choices) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    auto s = node->value<std::string>();
    std::optional<Enum> parsed = s ? parse(*s) : std::nullopt;
    if (!parsed) return fail(*node, qualified(key) + " must be one of " + std::string(choices));
    out = parsed;
  }

  void read_strings(std::string_view key, std::vector<std::string>& out) {
    const toml::node* node = table_.get(key);
    if (!node) return;
    const auto* array = node->as_array();
    if (!array) return fail(*node, qualified(key) + " must be an array of strings");
    std::vector<std::string> values;
    for (const auto& element : *array) {
      auto s = element.value<std::string>();
      if (!s) return fail(element, qualified(key) + " must contain only strings");
      values.push_back(*s);
    }
    out = std::move(values);
  }

  void fail(const toml::node& node, std::string message) {
    if (error) return;
    error = Error{std::string(source_) + ":" + std::to_string(node.source().begin.line) + ": " + message};
  }

 private:
  std::string qualified(std::string_view key) const { return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key); }
  const toml::table& table_;
  std::string prefix_;
  std::string_view source_;
};

std::optional<Error> read_container_settings(const toml::table& table, const std::string& prefix,
                                             std::string_view source, ContainerSettings& out,
                                             std::initializer_list<std::string_view> extra_keys = {}) {
  TableReader r(table, prefix, source);
  std::vector<std::string_view> keys = {"mode",       "cpu_min",  "cpu_max", "memory_min",
                                        "memory_max", "throttle_target", "runq_p99_target_us",
                                        "priority",   "weight",   "group"};
  keys.insert(keys.end(), extra_keys.begin(), extra_keys.end());
  const std::set<std::string_view> known(keys.begin(), keys.end());
  for (const auto& [key, node] : table) {
    if (!known.count(key.str())) r.fail(node, "unknown key '" + prefix + "." + std::string(key.str()) + "'");
  }
  r.read_enum(std::string_view("mode"), out.mode, &parse_mode, "\"auto\", \"recommend\", \"off\"");
  r.read_number("cpu_min", out.cpu_min_cores, 0.001, 4096);
  r.read_number("cpu_max", out.cpu_max_cores, 0, 4096);
  r.read_bytes("memory_min", out.memory_min_bytes);
  r.read_bytes("memory_max", out.memory_max_bytes);
  r.read_number("throttle_target", out.throttle_target, 0, 1);
  r.read_number("runq_p99_target_us", out.runq_latency_p99_target_us, 1, 1e7);
  r.read_enum(std::string_view("priority"), out.priority, &parse_priority,
              "\"guaranteed\", \"burstable\", \"best-effort\"");
  r.read_number("weight", out.weight, 0.001, 1e6);
  std::string group;
  r.read("group", group);
  if (!group.empty()) out.group = group;
  return r.error;
}

}  // namespace

Result<Config> parse_config(std::string_view toml_text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    return Error{std::string(source) + ":" + std::to_string(e.source().begin.line) + ": " +
                 std::string(e.description())};
  }

  Config config;
  TableReader top(root, "", source);
  top.expect_only({"daemon", "select", "defaults", "container", "api"});
  if (top.error) return *top.error;

  if (const auto* daemon = root["daemon"].as_table()) {
    TableReader r(*daemon, "daemon", source);
    r.expect_only({"cgroup_root", "state_dir", "tick", "dry_run", "restore_on_exit", "log_level", "policy",
                   "decision_log", "node_cpus", "node_memory", "probes", "react_to_events", "event_min_interval"});
    r.read("cgroup_root", config.cgroup_root);
    r.read("state_dir", config.state_dir);
    r.read_duration("tick", config.tick);
    r.read("dry_run", config.dry_run);
    r.read("restore_on_exit", config.restore_on_exit);
    r.read("log_level", config.log_level);
    std::string policy_name = to_string(config.policy);
    r.read("policy", policy_name);
    if (policy_name == "learner") config.policy = PolicyKind::learner;
    else if (policy_name == "heuristic") config.policy = PolicyKind::heuristic;
    else r.fail(*daemon->get("policy"), "daemon.policy must be \"learner\" or \"heuristic\"");
    std::string decision_log;
    r.read("decision_log", decision_log);
    if (!decision_log.empty()) config.decision_log = decision_log;
    std::optional<double> cpus;
    r.read_number("node_cpus", cpus, 0, 4096);
    config.node_cpu_cores = cpus.value_or(0);
    std::optional<std::uint64_t> memory;
    r.read_bytes("node_memory", memory);
    config.node_memory_bytes = memory.value_or(0);
    r.read("probes", config.probes);
    r.read("react_to_events", config.react_to_events);
    r.read_duration("event_min_interval", config.event_min_interval);
    if (r.error) return *r.error;
    if (config.tick < kMinTick || config.tick > kMaxTick) {
      TableReader tick_reader(*daemon, "daemon", source);
      tick_reader.fail(*daemon->get("tick"), "daemon.tick must be between 50ms and 10s");
      return *tick_reader.error;
    }
  }

  if (const auto* select = root["select"].as_table()) {
    TableReader r(*select, "select", source);
    r.expect_only({"patterns"});
    r.read_strings("patterns", config.select);
    if (r.error) return *r.error;
    // A [select] table without patterns keeps the default selection (found by fuzzing).
    if (const auto* patterns = (*select)["patterns"].as_array()) {
      for (const auto& element : *patterns) {
        auto parsed = discovery::Selector::parse(*element.value<std::string>());
        if (!parsed) {
          r.fail(element, "select.patterns: " + parsed.error().message);
          return *r.error;
        }
      }
    }
  }

  if (const auto* defaults = root["defaults"].as_table()) {
    if (auto error = read_container_settings(*defaults, "defaults", source, config.defaults)) return *error;
  }

  if (const auto* containers = root["container"].as_array()) {
    for (std::size_t i = 0; i < containers->size(); ++i) {
      const auto* table = containers->get(i)->as_table();
      const std::string prefix = "container[" + std::to_string(i) + "]";
      if (!table) {
        return Error{std::string(source) + ":" + std::to_string(containers->get(i)->source().begin.line) + ": " +
                     prefix + " must be a table ([[container]])"};
      }
      TableReader r(*table, prefix, source);
      Override entry;
      r.read("select", entry.select);
      if (entry.select.empty()) r.fail(*containers->get(i), prefix + ".select is required");
      else if (auto parsed = discovery::Selector::parse(entry.select); !parsed)
        r.fail(*table->get("select"), prefix + ".select: " + parsed.error().message);
      if (r.error) return *r.error;
      if (auto error = read_container_settings(*table, prefix, source, entry.settings, {"select"})) return *error;
      config.overrides.push_back(std::move(entry));
    }
  }

  if (const auto* api = root["api"].as_table()) {
    TableReader r(*api, "api", source);
    r.expect_only({"socket", "tcp_listen", "metrics_listen"});
    r.read("socket", config.socket);
    std::string tcp, metrics;
    r.read("tcp_listen", tcp);
    r.read("metrics_listen", metrics);
    if (!tcp.empty()) config.tcp_listen = tcp;
    if (!metrics.empty()) config.metrics_listen = metrics;
    if (r.error) return *r.error;
  }

  if (auto status = validate(config); !status) {
    return Error{std::string(source) + ": " + status.error().message};
  }
  return config;
}

Result<Config> load_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return system_error("cannot read config", file.string(), errno);
  std::stringstream text;
  text << in.rdbuf();
  return parse_config(text.str(), file.string());
}

Status validate(const Config& config) {
  if (config.tick < kMinTick || config.tick > kMaxTick) return Error{"tick must be between 50ms and 10s"};
  if (config.select.empty()) return Error{"no cgroups selected: give at least one select pattern"};
  for (const auto& pattern : config.select) {
    if (auto parsed = discovery::Selector::parse(pattern); !parsed) return parsed.error();
  }
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (!levels.count(config.log_level)) {
    return Error{"log level '" + config.log_level + "' must be one of trace, debug, info, warn, error, critical, off"};
  }
  auto check = [](const ContainerSettings& s, const std::string& where) -> Status {
    if (s.cpu_min_cores && s.cpu_max_cores && *s.cpu_max_cores > 0 && *s.cpu_min_cores > *s.cpu_max_cores)
      return Error{where + ": cpu_min is above cpu_max"};
    if (s.memory_min_bytes && s.memory_max_bytes && *s.memory_max_bytes > 0 &&
        *s.memory_min_bytes > *s.memory_max_bytes)
      return Error{where + ": memory_min is above memory_max"};
    return ok_status();
  };
  if (auto s = check(config.defaults, "defaults"); !s) return s;
  for (std::size_t i = 0; i < config.overrides.size(); ++i) {
    if (auto s = check(config.overrides[i].settings, "container[" + std::to_string(i) + "]"); !s) return s;
  }
  return ok_status();
}

EffectiveSettings resolve_settings(const Config& config, std::string_view cgroup_path,
                                   const ContainerSettings* api_override) {
  ContainerSettings merged = config.defaults;
  for (const auto& entry : config.overrides) {
    auto selector = discovery::Selector::parse(entry.select);
    if (selector && selector->matches(cgroup_path)) merged.merge(entry.settings);
  }
  if (api_override) merged.merge(*api_override);

  EffectiveSettings out;
  out.mode = merged.mode.value_or(Mode::automatic);
  if (merged.cpu_min_cores) out.bounds.cpu_min_cores = *merged.cpu_min_cores;
  if (merged.cpu_max_cores) out.bounds.cpu_max_cores = *merged.cpu_max_cores;
  if (merged.memory_min_bytes) out.bounds.memory_min_bytes = *merged.memory_min_bytes;
  if (merged.memory_max_bytes) out.bounds.memory_max_bytes = *merged.memory_max_bytes;
  if (merged.throttle_target) out.objective.throttled_fraction = *merged.throttle_target;
  out.objective.runq_latency_p99_us = merged.runq_latency_p99_target_us;
  out.priority = merged.priority.value_or(policy::PriorityClass::burstable);
  out.weight = merged.weight.value_or(1.0);
  out.group = merged.group.value_or("");
  return out;
}

}  // namespace ebb::config
