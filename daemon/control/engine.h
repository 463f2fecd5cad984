#pragma once
// The control engine: one pass over the managed cgroups per tick (snapshot -> observation ->
// controller decision -> node arbitration -> limit writes), plus immediate reactions to
// starvation events. Single-threaded: the event loop owns it. No clocks are read here except the
// snapshots' own timestamps and the `now` the caller passes, so tests drive it directly.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/cgroup/cgroup.h"
#include "daemon/config/config.h"
#include "daemon/control/observe.h"
#include "daemon/control/state_store.h"
#include "daemon/discovery/discovery.h"
#include "daemon/policy/policy.h"
#include "daemon/probes/probes.h"

namespace ebb::control {

using SteadyTime = std::chrono::steady_clock::time_point;

struct DecisionRecord {
  std::chrono::system_clock::time_point at;
  policy::Observation observation;
  policy::Decision decision;
  std::vector<std::string> writes;   // "cpu.max=..." as written, or as it would be
  bool applied = false;              // false in dry-run and recommend mode
  bool event_driven = false;
  std::string error;                 // a write that failed
};

struct Container {
  std::string path;
  std::string name;
  std::uint64_t id = 0;
  config::EffectiveSettings settings;
  std::unique_ptr<policy::ContainerController> controller;
  std::optional<cgroup::Snapshot> last_snapshot;
  std::optional<probes::CgroupCounters> last_probe;
  policy::Observation last_observation;
  std::optional<policy::Decision> last_decision;
  double wanted_cpu_cores = 0;        // the controller's CPU decision before arbitration
  std::deque<DecisionRecord> history;  // newest last, bounded
  SteadyTime last_event_reaction{};
  std::uint64_t decisions = 0, limit_writes = 0, event_reactions = 0, events_suppressed = 0;
  std::uint64_t oom_kills = 0;
  bool cpu_stat_moved = true;     // between its last two reads (see control::tick_freshness)
  std::uint64_t quiet_ticks = 0;  // ticks that did not re-read cpu.stat and memory.current
  std::string reported_error;  // last error logged, so a failing cgroup logs once, not every tick
};

// Notified of what happened, for the API stream, metrics and logs.
class EngineListener {
 public:
  virtual ~EngineListener() = default;
  virtual void on_adopted(const Container&) {}
  virtual void on_dropped(const std::string& /*path*/, const std::string& /*why*/) {}
  virtual void on_decision(const Container&, const DecisionRecord&) {}
  virtual void on_unmanageable(const std::string& /*path*/, const std::string& /*why*/) {}
};

struct NodeCapacity {
  double cpu_cores = 1;
  std::uint64_t memory_bytes = 1ull << 30;
};

class Engine {
 public:
  static constexpr std::size_t kHistory = 64;

  Engine(config::Config config, NodeCapacity node, cgroup::CgroupFs& fs, cgroup::LimitWriter& writer,
         StateStore* state, policy::ControllerFactory factory);

  // Matches the tree against the selectors: adopts new cgroups, drops removed or deselected ones
  // (restoring the originals of those that still exist).
  void rescan();
  // One control pass. `probe_counters` are this tick's cumulative counters by cgroup id, if the
  // probes are loaded.
  void tick(const std::unordered_map<std::uint64_t, probes::CgroupCounters>* probe_counters = nullptr);
  // A starvation event for a cgroup: decide for it now, unless it reacted less than
  // event_min_interval ago. Returns whether it acted.
  bool react(std::uint64_t cgroup_id, std::string_view why, SteadyTime now);
  // Puts back the recorded originals of every managed cgroup and forgets them.
  void restore_originals();
  // New config (SIGHUP): settings and selection change; controllers and history are kept.
  void reconfigure(config::Config config);
  // Budget from ebb-manager or the API; nullopt: the node's capacity.
  void set_node_budget(std::optional<double> cpu_cores) { node_budget_ = cpu_cores; }
  void add_listener(EngineListener* listener) { listeners_.push_back(listener); }
  void remove_listener(EngineListener* listener) { std::erase(listeners_, listener); }
  // What this node may give a budget group's containers (from ebb-manager). CPU limits of the
  // members are arbitrated to sum to at most cpu_cores. Their memory.max values are water-filled
  // (max-min, by the controllers' wants) to sum to at most memory_bytes, but no memory.max goes
  // below the container's usage plus a safety margin: when the share is below that, memory.high
  // (reclaim, never an OOM kill) carries the share and the usage above it is reported as the
  // group's memory shortfall.
  struct GroupBudget {
    std::optional<double> cpu_cores;             // nullopt: no CPU cap
    std::optional<std::uint64_t> memory_bytes;   // nullopt: no memory cap
  };
  // nullopt, or a budget with neither field: the group has no budget on this node.
  void set_group_budget(const std::string& group, std::optional<GroupBudget> budget);
  struct GroupDemand {
    double wanted_cpu_cores = 0;   // what the controllers asked for before any cap
    double used_cpu_cores = 0;
    std::uint64_t memory_bytes = 0;
    // Usage above the group's memory share at the last tick (0 without a memory budget).
    std::uint64_t memory_shortfall_bytes = 0;
    int containers = 0;
  };
  // Per budget group (containers whose settings name one), from the last tick.
  std::map<std::string, GroupDemand> group_demand() const;
  // Settings set through the API, by selector; applied on top of the config's.
  void set_api_overrides(std::vector<config::Override> overrides);

  const std::map<std::string, Container>& containers() const { return containers_; }
  const Container* find_by_id(std::uint64_t id) const;
  const std::map<std::string, std::string>& unmanageable() const { return unmanageable_; }
  const config::Config& config() const { return config_; }
  const NodeCapacity& node() const { return node_; }
  double cpu_budget() const { return node_budget_.value_or(node_.cpu_cores); }
  std::uint64_t ticks() const { return ticks_; }

 private:
  struct Step {
    Container* container;
    cgroup::Snapshot snapshot;
    policy::Decision decision;
  };
  std::optional<Step> observe_and_decide(Container& c, const probes::CgroupCounters* counters, bool starving,
                                         cgroup::Freshness freshness);
  void arbitrate(std::vector<Step>& steps);
  void share_group_memory(const std::string& group, const std::vector<Step*>& members, std::uint64_t share);
  void apply(Step& step, bool event_driven);
  void adopt(const discovery::Candidate& candidate);
  void drop(std::map<std::string, Container>::iterator it, const std::string& why, bool restore);
  void restore(const std::string& path, std::uint64_t id);
  void report_error(Container& c, const Error& error);
  void log_decision(const Container& c, const DecisionRecord& record) const;
  config::EffectiveSettings settings_for(const std::string& path) const;
  policy::ControllerParams params_for(const config::EffectiveSettings& settings) const;

  config::Config config_;
  NodeCapacity node_;
  cgroup::CgroupFs& fs_;
  cgroup::LimitWriter& writer_;
  StateStore* state_;
  policy::ControllerFactory factory_;
  std::vector<EngineListener*> listeners_;
  std::map<std::string, GroupBudget> group_budgets_;
  std::map<std::string, std::uint64_t> memory_shortfalls_;  // by group, from the last tick
  template <typename Fn>
  void notify(Fn&& fn) const {
    for (auto* l : listeners_) fn(*l);
  }
  std::optional<double> node_budget_;
  std::vector<discovery::Selector> selectors_;
  std::vector<config::Override> api_overrides_;
  std::map<std::string, Container> containers_;
  std::map<std::string, std::string> unmanageable_;
  std::string reported_state_error_;
  std::uint64_t ticks_ = 0;
};

// One JSON object per decision record, as written to the decision log and by `ebbd --once`.
std::string to_json_line(const Container& c, const DecisionRecord& record);

}  // namespace ebb::control
