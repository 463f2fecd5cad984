#include "daemon/api/policy_store.h"

#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon/api/convert.h"
#include "daemon/control/state_store.h"
#include "daemon/discovery/discovery.h"

namespace ebb::api {

namespace {

// Entries are {"select": glob, "settings": PolicySettings in protobuf's JSON mapping}, the
// same shape `ebbctl set -o json` prints.
std::string serialize(const std::vector<config::Override>& overrides) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& o : overrides) {
    std::string settings;
    (void)google::protobuf::util::MessageToJsonString(to_proto(o.settings), &settings);
    entries.push_back({{"select", o.select}, {"settings", nlohmann::json::parse(settings)}});
  }
  return nlohmann::json{{"policies", entries}}.dump(2) + "\n";
}

Result<std::vector<config::Override>> parse(const std::string& text, const std::string& file) {
  auto fail = [&](const std::string& why) { return Error{"malformed API policies: " + why, file}; };
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("policies") || !json["policies"].is_array()) {
    return fail("expected {\"policies\": [...]}");
  }
  std::vector<config::Override> out;
  for (std::size_t i = 0; i < json["policies"].size(); ++i) {
    const auto& entry = json["policies"][i];
    const std::string where = "policies[" + std::to_string(i) + "]";
    if (!entry.is_object() || !entry.contains("select") || !entry["select"].is_string() || !entry.contains("settings")) {
      return fail(where + ": expected {\"select\": ..., \"settings\": {...}}");
    }
    config::Override o;
    o.select = entry["select"].get<std::string>();
    if (auto s = discovery::Selector::parse(o.select); !s) return fail(where + ".select: " + s.error().message);
    v1::PolicySettings settings;
    if (auto s = google::protobuf::util::JsonStringToMessage(entry["settings"].dump(), &settings); !s.ok()) {
      return fail(where + ".settings: " + std::string(s.message()));
    }
    auto checked = settings_from_proto(settings);
    if (!checked) return fail(where + "." + checked.error().message);
    o.settings = std::move(*checked);
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace

Result<PolicyStore> PolicyStore::open(const std::filesystem::path& state_dir) {
  PolicyStore store(state_dir / "policies.json");
  std::ifstream in(store.file_);
  if (!in) {
    if (errno == ENOENT) return store;
    return system_error("cannot read API policies", store.file_.string(), errno);
  }
  std::stringstream text;
  text << in.rdbuf();
  auto parsed = parse(text.str(), store.file_.string());
  if (!parsed) return parsed.error();
  store.overrides_ = std::move(*parsed);
  return store;
}

Result<config::ContainerSettings> PolicyStore::set(const std::string& select, const config::ContainerSettings& settings,
                                                   bool reset) {
  auto next = overrides_;
  auto it = std::find_if(next.begin(), next.end(), [&](const config::Override& o) { return o.select == select; });
  if (it == next.end()) it = next.insert(next.end(), config::Override{select, {}});
  if (reset) it->settings = {};
  it->settings.merge(settings);
  if (auto s = check_consistent(it->settings); !s) return s.error();
  auto stored = it->settings;
  if (auto s = control::write_file_atomically(file_, serialize(next)); !s) return s.error();
  overrides_ = std::move(next);
  return stored;
}

}  // namespace ebb::api
