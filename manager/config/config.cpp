#include "manager/config/config.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "daemon/common/duration.h"

namespace ebb::manager {
namespace {

// The first error wins; every check after it is skipped.
struct Checker {
  std::string_view source;
  std::optional<Error> error;

  void fail(const toml::node& at, const std::string& what) {
    if (!error) error = Error{std::string(source) + ":" + std::to_string(at.source().begin.line) + ": " + what};
  }
  void known_keys(const toml::table& t, std::string_view table, std::set<std::string_view> keys) {
    for (const auto& [k, v] : t)
      if (!keys.count(k.str())) fail(v, "unknown key " + std::string(table) + "." + std::string(k.str()));
  }
  void text(const toml::table& t, std::string_view key, std::string& out) {
    if (const auto* n = t.get(key)) {
      if (auto v = n->value<std::string>()) out = *v;
      else fail(*n, std::string(key) + " must be a string");
    }
  }
  void texts(const toml::table& t, std::string_view key, std::vector<std::string>& out) {
    const auto* n = t.get(key);
    if (!n) return;
    const auto* array = n->as_array();
    std::vector<std::string> values;
    if (array)
      for (const auto& item : *array)
        if (auto v = item.value<std::string>()) values.push_back(*v);
    if (!array || values.size() != array->size() || values.empty()) fail(*n, std::string(key) + " must be a non-empty list of strings");
    else out = std::move(values);
  }
  void path(const toml::table& t, std::string_view key, std::optional<std::filesystem::path>& out) {
    std::string s;
    text(t, key, s);
    if (!s.empty()) out = s;
  }
  void flag(const toml::table& t, std::string_view key, bool& out) {
    if (const auto* n = t.get(key)) {
      if (auto v = n->value<bool>()) out = *v;
      else fail(*n, std::string(key) + " must be true or false");
    }
  }
  void number(const toml::table& t, std::string_view key, double& out, double max) {
    if (const auto* n = t.get(key)) {
      auto v = n->value<double>();
      if (!v || *v < 0 || *v > max) fail(*n, std::string(key) + " must be a number in [0, " + std::to_string(max) + "]");
      else out = *v;
    }
  }
  void duration(const toml::table& t, std::string_view key, std::chrono::nanoseconds& out) {
    if (const auto* n = t.get(key)) {
      auto s = n->value<std::string>();
      auto d = s ? parse_duration(*s) : Result<std::chrono::nanoseconds>(Error{"must be a string like \"500ms\""});
      if (!d || d->count() <= 0) fail(*n, std::string(key) + ": " + (d ? "must be positive" : d.error().message));
      else out = *d;
    }
  }
  void bytes(const toml::table& t, std::string_view key, double& out) {
    if (const auto* n = t.get(key)) {
      auto s = n->value<std::string>();
      auto b = s ? parse_bytes(*s) : Result<std::uint64_t>(Error{"must be a size like \"512M\""});
      if (!b) fail(*n, std::string(key) + ": " + b.error().message);
      else out = static_cast<double>(*b);
    }
  }
};

}  // namespace

Result<ManagerConfig> parse_manager_config(std::string_view toml_text, std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& e) {
    return Error{std::string(source) + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description())};
  }
  ManagerConfig c;
  Checker check{source, {}};
  check.known_keys(root, "", {"manager", "tls", "allocation", "etcd"});
  static const toml::table empty;
  const auto& m = root["manager"].as_table() ? *root["manager"].as_table() : empty;
  check.known_keys(m, "manager", {"listen", "plaintext_loopback", "state_file", "cap_schedule", "lease", "round_interval",
                                  "report_interval", "min_shift_interval", "shift_cores", "shift_fraction"});
  check.text(m, "listen", c.listen);
  check.flag(m, "plaintext_loopback", c.transport.plaintext);
  check.path(m, "state_file", c.state_file);
  check.path(m, "cap_schedule", c.cap_schedule);
  auto& o = c.options;
  check.duration(m, "lease", o.lease);
  check.duration(m, "round_interval", o.round_interval);
  check.duration(m, "report_interval", o.report_interval);
  check.duration(m, "min_shift_interval", o.min_shift_interval);
  check.number(m, "shift_cores", o.shift_cores, 1e6);
  check.number(m, "shift_fraction", o.shift_fraction, 1);

  const auto& t = root["tls"].as_table() ? *root["tls"].as_table() : empty;
  check.known_keys(t, "tls", {"cert", "key", "ca"});
  std::optional<std::filesystem::path> cert, key, ca;
  check.path(t, "cert", cert);
  check.path(t, "key", key);
  check.path(t, "ca", ca);
  c.transport.tls = {cert.value_or(""), key.value_or(""), ca.value_or("")};

  const auto& a = root["allocation"].as_table() ? *root["allocation"].as_table() : empty;
  check.known_keys(a, "allocation", {"reserve_cpus", "reserve_memory", "spread_surplus", "hysteresis_cpus",
                                     "hysteresis_fraction"});
  auto& p = o.allocation;
  check.number(a, "reserve_cpus", p.reserve_cpu_cores, 4096);
  check.bytes(a, "reserve_memory", p.reserve_memory_bytes);
  check.flag(a, "spread_surplus", p.spread_surplus);
  check.number(a, "hysteresis_cpus", p.hysteresis_cpu_cores, 4096);
  check.number(a, "hysteresis_fraction", p.hysteresis_fraction, 1);

  if (const auto* e = root["etcd"].as_table()) {
    auto& etcd = c.etcd.emplace();
    check.known_keys(*e, "etcd", {"endpoints", "prefix", "lease_ttl", "safety_fraction", "advertise", "request_timeout"});
    check.texts(*e, "endpoints", etcd.endpoints);
    check.text(*e, "prefix", etcd.prefix);
    std::chrono::nanoseconds ttl = etcd.lease_ttl, timeout = etcd.request_timeout;
    check.duration(*e, "lease_ttl", ttl);
    check.duration(*e, "request_timeout", timeout);
    check.number(*e, "safety_fraction", etcd.safety_fraction, 1);
    check.text(*e, "advertise", etcd.advertise);
    if (const auto* n = e->get("lease_ttl"); n && (ttl % std::chrono::seconds(1) != ttl.zero()))
      check.fail(*n, "lease_ttl must be whole seconds (etcd leases count in seconds)");
    if (const auto* n = e->get("safety_fraction"); n && etcd.safety_fraction <= 0)
      check.fail(*n, "safety_fraction must be above 0");
    etcd.lease_ttl = std::chrono::duration_cast<std::chrono::seconds>(ttl);
    etcd.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  }
  if (check.error) return *check.error;

  if (c.etcd && c.state_file)
    return Error{std::string(source) + ": state_file and [etcd] are both set; the replicas keep their state in etcd"};

  // Plaintext must be asked for and must stay on loopback; TLS needs all three files.
  if (c.transport.plaintext && !is_loopback_address(c.listen))
    return Error{std::string(source) + ": plaintext_loopback is set but listen = " + c.listen + " is not a loopback address"};
  if (c.transport.plaintext && !c.transport.tls.empty())
    return Error{std::string(source) + ": plaintext_loopback and [tls] are both set; choose one"};
  if (!c.transport.plaintext && (cert.value_or("").empty() || key.value_or("").empty() || ca.value_or("").empty()))
    return Error{std::string(source) + ": [tls] cert, key and ca are required (or plaintext_loopback = true on loopback)"};
  return c;
}

Result<ManagerConfig> load_manager_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return system_error("cannot read the manager config", file.string(), errno);
  std::ostringstream text;
  text << in.rdbuf();
  return parse_manager_config(text.str(), file.string());
}

Result<std::vector<CapChange>> parse_cap_schedule(std::string_view text, std::string_view source) {
  std::vector<CapChange> out;
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream fields(line);
    std::string at;
    double cores = 0;
    if (!(fields >> at)) continue;  // blank
    int h = -1, m = -1;
    char colon = 0, extra = 0;
    std::istringstream hm(at);
    const auto where = std::string(source) + ":" + std::to_string(number) + ": ";
    if (!(hm >> h >> colon >> m) || colon != ':' || (hm >> extra) || h < 0 || h > 23 || m < 0 || m > 59)
      return Error{where + "expected a time HH:MM, got '" + at + "'"};
    if (!(fields >> cores) || cores < 0 || !std::isfinite(cores) || (fields >> extra))
      return Error{where + "expected one CPU cap in cores (0: none) after the time"};
    out.push_back({std::chrono::minutes(h * 60 + m), cores});
  }
  std::sort(out.begin(), out.end(), [](const CapChange& a, const CapChange& b) { return a.at < b.at; });
  return out;
}

std::optional<double> cap_at(const std::vector<CapChange>& schedule, std::chrono::minutes since_midnight) {
  if (schedule.empty()) return std::nullopt;
  const CapChange* current = &schedule.back();  // before the first entry: yesterday's last
  for (const auto& c : schedule)
    if (c.at <= since_midnight) current = &c;
  return current->cpu_cores > 0 ? std::optional<double>(current->cpu_cores) : std::nullopt;
}

}  // namespace ebb::manager
