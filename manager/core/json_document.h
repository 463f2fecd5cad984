#pragma once
// The manager's JSON documents (the state, and the relay's published nodes and outbox): the
// version check and the errors every reader shares, and the shares' format. For the core's .cpp
// files only.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/common/error.h"
#include "manager/core/storage.h"

namespace ebb::manager {

// Parses `text`, checks it is version 1 and returns `read(doc)` (a T or a Result<T>); what JSON
// throws becomes an error naming `source` and `what` ("state", "outbox", ...).
template <typename T, typename Read>
Result<T> read_json_document(std::string_view text, std::string_view source, std::string_view what, Read read) {
  try {
    const nlohmann::json doc = nlohmann::json::parse(text);
    if (doc.at("version").get<int>() != 1)
      return Error{std::string(source) + ": unknown " + std::string(what) + " version"};
    return read(doc);
  } catch (const nlohmann::json::exception& e) {
    return Error{std::string(source) + ": malformed " + std::string(what) + ": " + e.what()};
  }
}

inline nlohmann::json shares_json(const std::vector<NodeShare>& shares) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : shares) out.push_back({{"group", s.group}, {"cpu_cores", s.cpu_cores}, {"memory_bytes", s.memory_bytes}});
  return out;
}

inline std::vector<NodeShare> parse_shares(const nlohmann::json& shares) {
  std::vector<NodeShare> out;
  for (const auto& s : shares)
    out.push_back({s.at("group").get<std::string>(), s.at("cpu_cores").get<double>(), s.at("memory_bytes").get<std::uint64_t>()});
  return out;
}

}  // namespace ebb::manager
