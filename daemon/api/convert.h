#pragma once
// Engine state <-> ebb.v1 messages. Pure functions: called on the loop thread, which owns the
// Engine, and tested on hand-built structs.
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/config/config.h"
#include "daemon/control/engine.h"
#include "daemon/discovery/discovery.h"
#include "daemon/probes/probes.h"
#include "ebb/v1/node.pb.h"
#include "proto/priority_class.h"

namespace ebb::api {

// What GetNode reports beyond the Engine.
struct NodeInfo {
  std::string version;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::vector<probes::ProbeStatus> probes;  // empty: not loaded
};

v1::Mode to_proto(config::Mode mode);
std::optional<config::Mode> mode_from_proto(v1::Mode mode);  // nullopt for UNSPECIFIED
using ebb::priority_from_proto;  // proto/priority_class.h
using ebb::to_proto;

void fill_node(const control::Engine& engine, const NodeInfo& info, v1::Node& out);
void fill_container(const control::Container& c, v1::Container& out);
// `decisions`: at most that many of the newest records.
void fill_detail(const control::Container& c, std::size_t decisions, v1::ContainerDetail& out);
void fill_decision(const control::DecisionRecord& record, v1::Decision& out);

// Filters of ListContainers; the glob (a discovery::Selector) matches the path or the name.
// Returns the error naming the field when the request is malformed.
class ContainerFilter {
 public:
  static Result<ContainerFilter> from(const v1::ListContainersRequest& request);
  static Result<ContainerFilter> from_glob(const std::string& glob, const std::string& field);
  bool matches(const control::Container& c) const;
  bool matches(const std::string& path, const std::string& name) const;

 private:
  std::optional<discovery::Selector> select_;
  std::optional<config::Mode> mode_;
  std::optional<policy::PriorityClass> priority_;
  std::string group_;
};

// Validates every field set in the request's settings. The error message starts with the
// field's name, e.g. "settings.cpu_min_cores: must be between 0.001 and 4096 (got -1)".
Result<config::ContainerSettings> settings_from_proto(const v1::PolicySettings& settings);
v1::PolicySettings to_proto(const config::ContainerSettings& settings);
// Cross-field rules on settings after merging (min above max).
Status check_consistent(const config::ContainerSettings& settings);

// Each request checked before a handler goes to the loop: pure, so that tests and the
// api_request fuzz target (tests/fuzz) drive the very checks the server runs. Errors name the
// field, for INVALID_ARGUMENT.
Status validate(const v1::GetContainerRequest& request);

struct WatchRequest {
  ContainerFilter filter;
  std::set<int> kinds;  // v1::EventKind values; empty: all
};
Result<WatchRequest> validate(const v1::WatchEventsRequest& request);

struct PolicyRequest {
  std::optional<std::string> container;  // a name or path, resolved on the loop
  std::string select;                    // a valid glob when container is not set
  bool reset = false;
  config::ContainerSettings settings;
};
Result<PolicyRequest> validate(const v1::SetPolicyRequest& request);

}  // namespace ebb::api
