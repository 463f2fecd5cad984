#include "manager/core/storage.h"

#include <fstream>
#include <sstream>

#include "daemon/config/config.h"
#include "daemon/control/state_store.h"
#include "manager/core/json_document.h"

namespace ebb::manager {

using nlohmann::json;

std::string to_json(const PersistentState& state) {
  json doc;
  doc["version"] = 1;
  doc["round"] = state.round;
  if (state.cluster_cap_cpu_cores) doc["cluster_cap_cpu_cores"] = *state.cluster_cap_cpu_cores;
  json& groups = doc["groups"] = json::array();
  for (const auto& g : state.groups)
    groups.push_back({{"name", g.name},
                      {"cpu_cores", g.cpu_cores},
                      {"memory_bytes", g.memory_bytes},
                      {"priority", config::to_string(g.priority)},
                      {"floor_cpu_cores", g.floor_cpu_cores}});
  json& nodes = doc["nodes"] = json::object();
  for (const auto& [id, n] : state.nodes) {
    auto it = state.allocations.find(id);
    const json shares = shares_json(it != state.allocations.end() ? it->second : std::vector<NodeShare>{});
    nodes[id] = {{"cpu_cores", n.cpu_cores}, {"memory_bytes", n.memory_bytes}, {"labels", n.labels}, {"allocated", shares}};
  }
  return doc.dump(1) + "\n";
}

Result<PersistentState> parse_state_json(std::string_view text, std::string_view source) {
  return read_json_document<PersistentState>(text, source, "state", [&](const json& doc) -> Result<PersistentState> {
    PersistentState state;
    state.round = doc.at("round").get<std::uint64_t>();
    if (doc.contains("cluster_cap_cpu_cores")) state.cluster_cap_cpu_cores = doc["cluster_cap_cpu_cores"].get<double>();
    for (const auto& g : doc.at("groups")) {
      auto priority = config::parse_priority(g.at("priority").get<std::string>());
      if (!priority) return Error{std::string(source) + ": group " + g.at("name").dump() + " has an unknown priority"};
      state.groups.push_back({g.at("name").get<std::string>(), g.at("cpu_cores").get<double>(),
                              g.at("memory_bytes").get<std::uint64_t>(), *priority, g.at("floor_cpu_cores").get<double>()});
    }
    for (const auto& [id, n] : doc.at("nodes").items()) {
      state.nodes[id] = {id, n.at("cpu_cores").get<double>(), n.at("memory_bytes").get<std::uint64_t>(),
                         n.at("labels").get<std::map<std::string, std::string>>()};
      state.allocations[id] = parse_shares(n.at("allocated"));
    }
    return state;
  });
}

Result<std::optional<PersistentState>> FileStateStorage::load() {
  std::ifstream in(file_);
  if (!in) {
    if (errno == ENOENT) return std::optional<PersistentState>{};
    return system_error("cannot read manager state", file_.string(), errno);
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto state = parse_state_json(text.str(), file_.string());
  if (!state) return state.error();
  return std::optional<PersistentState>(std::move(*state));
}

Status FileStateStorage::save(const PersistentState& state) {
  return control::write_file_atomically(file_, to_json(state));
}

Status MemoryStateStorage::save(const PersistentState& state) {
  saved_ = state;
  ++saves_;
  return ok_status();
}

}  // namespace ebb::manager
