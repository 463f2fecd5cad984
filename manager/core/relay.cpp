#include "manager/core/relay.h"

#include "manager/core/json_document.h"

namespace ebb::manager {

using nlohmann::json;

std::string to_json(const std::map<std::string, RelayedNode>& nodes) {
  json doc;
  doc["version"] = 1;
  json& out = doc["nodes"] = json::object();
  for (const auto& [id, n] : nodes) {
    json reported = json::array();
    for (const auto& r : n.reported)
      reported.push_back({{"group", r.group},
                          {"wanted_cpu_cores", r.wanted_cpu_cores},
                          {"used_cpu_cores", r.used_cpu_cores},
                          {"memory_bytes", r.memory_bytes},
                          {"containers", r.containers}});
    out[id] = {{"cpu_cores", n.info.cpu_cores},
               {"memory_bytes", n.info.memory_bytes},
               {"labels", n.info.labels},
               {"applied_round", n.applied_round},
               {"reported", reported}};
  }
  return doc.dump();
}

Result<std::map<std::string, RelayedNode>> parse_relayed_nodes(std::string_view text, std::string_view source) {
  using Nodes = std::map<std::string, RelayedNode>;
  return read_json_document<Nodes>(text, source, "relayed nodes", [](const json& doc) {
    Nodes out;
    for (const auto& [id, n] : doc.at("nodes").items()) {
      RelayedNode node{{id, n.at("cpu_cores").get<double>(), n.at("memory_bytes").get<std::uint64_t>(),
                        n.at("labels").get<std::map<std::string, std::string>>()},
                       {},
                       n.at("applied_round").get<std::uint64_t>()};
      for (const auto& r : n.at("reported"))
        node.reported.push_back({r.at("group").get<std::string>(), r.at("wanted_cpu_cores").get<double>(),
                                 r.at("used_cpu_cores").get<double>(), r.at("memory_bytes").get<std::uint64_t>(),
                                 r.at("containers").get<std::uint32_t>()});
      out[id] = std::move(node);
    }
    return out;
  });
}

std::string to_json(const Outbox& outbox) {
  json doc;
  doc["version"] = 1;
  doc["leader"] = outbox.leader;
  json& out = doc["nodes"] = json::object();
  for (const auto& [id, m] : outbox.nodes)
    out[id] = {{"via", m.via},
               {"seq", m.seq},
               {"round", m.allocation.round},
               {"node_cpu_cores", m.allocation.node_cpu_cores},
               {"groups", shares_json(m.allocation.groups)}};
  doc["refused"] = outbox.refused;
  return doc.dump();
}

Result<Outbox> parse_outbox(std::string_view text, std::string_view source) {
  return read_json_document<Outbox>(text, source, "outbox", [](const json& doc) {
    Outbox outbox;
    outbox.leader = doc.at("leader").get<std::int64_t>();
    for (const auto& [id, m] : doc.at("nodes").items())
      outbox.nodes[id] = {m.at("via").get<std::string>(), m.at("seq").get<std::uint64_t>(),
                          {m.at("round").get<std::uint64_t>(), parse_shares(m.at("groups")),
                           m.at("node_cpu_cores").get<double>()}};
    outbox.refused = doc.at("refused").get<std::map<std::string, std::string>>();
    return outbox;
  });
}

ToRelay to_relay(const Outbox& outbox, std::int64_t leader, const std::string& replica,
                 std::map<std::string, RelayedSent>& sent) {
  ToRelay out;
  if (leader == 0 || outbox.leader != leader) return out;
  for (const auto& [id, via] : outbox.refused)
    if (via == replica) out.refuse.push_back(id);
  for (const auto& [id, m] : outbox.nodes) {
    if (m.via != replica) continue;
    auto& s = sent[id];
    if (s.leader != leader) s = {leader, 0, {}};
    if (m.seq <= s.seq) continue;
    s.seq = m.seq;
    if (s.rounds.empty() || s.rounds.back() != m.allocation.round) s.rounds.push_back(m.allocation.round);
    // Enough to recognise an acknowledgement: nodes acknowledge what they got last.
    if (s.rounds.size() > 16) s.rounds.erase(s.rounds.begin());
    out.send[id] = m.allocation;
  }
  return out;
}

}  // namespace ebb::manager
