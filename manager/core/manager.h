#pragma once
// The manager's state and rules, without gRPC: node sessions and leases, budget groups, the
// latest reports, allocation rounds and persistence through a StateStorage. Thread-safe (one
// mutex): the gRPC handlers and the round loop call it from their own threads. Time is passed
// in, so tests drive leases and rounds without sleeping.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "manager/allocation/allocation.h"
#include "manager/core/leadership.h"
#include "manager/core/storage.h"

namespace ebb::manager {

using Clock = std::chrono::steady_clock;

struct GroupReport {
  std::string group;
  double wanted_cpu_cores = 0;
  double used_cpu_cores = 0;
  std::uint64_t memory_bytes = 0;
  std::uint32_t containers = 0;
  bool operator==(const GroupReport&) const = default;
};

struct NodeAllocation {
  std::uint64_t round = 0;
  std::vector<NodeShare> groups;
  double node_cpu_cores = 0;  // capacity minus the reserve
  bool operator==(const NodeAllocation&) const = default;
};

// A node streaming to a follower, as the follower publishes it for the leader (relay.h).
struct RelayedNode {
  NodeInfo info;
  std::vector<GroupReport> reported;
  std::uint64_t applied_round = 0;  // 0: none of the current leader's rounds applied yet
  bool operator==(const RelayedNode&) const = default;
};

struct RelayedReplica {
  std::string replica;       // its address
  std::int64_t version = 0;  // changes with every publish
  std::map<std::string, RelayedNode> nodes;
};

struct RelayedAllocation {
  std::string via;        // the replica streaming to the node
  std::uint64_t seq = 0;  // grows with every message of the leader
  NodeAllocation allocation;
};

// The leader's latest message to every node streaming to another replica.
struct Outbox {
  std::int64_t leader = 0;  // the writer's leader epoch
  std::map<std::string, RelayedAllocation> nodes;
  // Node ids a replica published while another connection holds them: node -> that replica,
  // which ends the stream (ALREADY_EXISTS, as a duplicate registration is refused).
  std::map<std::string, std::string> refused;
};

struct GroupView {
  GroupSpec spec;
  double allocated_cpu_cores = 0;
  std::uint64_t allocated_memory_bytes = 0;
  double wanted_cpu_cores = 0;
};

struct NodeView {
  NodeInfo info;
  bool connected = false;
  std::chrono::milliseconds lease_left{0};
  std::vector<GroupReport> reported;
  std::vector<NodeShare> allocated;
  std::string via;  // the leader: the replica a relayed node streams to ("" here)
};

struct RoundResult {
  std::uint64_t round = 0;
  std::chrono::microseconds duration{0};  // allocate() plus bookkeeping, not persistence
  std::map<std::string, NodeAllocation> to_nodes;  // connected nodes only
  std::vector<std::string> expired;                // nodes whose lease ended this round
  // Replicas only: the round's allocation could not be stored, so it must not be sent (the
  // previous one stays in force).
  bool withheld = false;
};

struct ManagerOptions {
  std::chrono::nanoseconds lease = std::chrono::seconds(10);
  std::chrono::nanoseconds round_interval = std::chrono::seconds(1);
  // A report that moves a group's demand on a node by more than max(cores, fraction x the
  // group's budget) triggers a round at once, but rounds stay at least this far apart.
  std::chrono::nanoseconds min_shift_interval = std::chrono::milliseconds(100);
  double shift_cores = 1.0;
  double shift_fraction = 0.1;
  std::chrono::nanoseconds report_interval = std::chrono::milliseconds(500);
  // A streaming node silent for this long counts as disconnected (its stream may be half-dead).
  std::chrono::nanoseconds silence = std::chrono::seconds(3);
  AllocationParams allocation;
};

class Manager {
 public:
  // `leadership` null: this manager always leads (the single-manager default). Otherwise it is
  // one replica of several: it allocates only while the leadership allows, loading the stored
  // state when it takes over; a change takes effect only once stored (a successor must know
  // it); while another replica leads it refuses writes (errno EREMOTE, the message names the
  // leader), reloads the stored state every round interval to serve reads, and keeps the streams
  // of the nodes connected to it, which the server relays (relay.h).
  Manager(ManagerOptions options, StateStorage* storage, Leadership* leadership = nullptr);

  // Loads the saved state: groups, the cluster cap, and the nodes' last allocations, which stay
  // pinned for a lease from `now` (those nodes may still be using them).
  Status restore(Clock::time_point now);

  // Errors: a node id already held by a live stream (errno_value EEXIST), or a capacity that
  // is not a positive finite number.
  Result<std::uint64_t> register_node(const NodeInfo& info, Clock::time_point now);
  Status open_stream(const std::string& node, std::uint64_t session, Clock::time_point now);
  // Returns whether the report moved demand enough to call for a round now. `applied_round`:
  // the node's acknowledgement, kept for relaying (the server's hand-over takes it directly).
  Result<bool> report(const std::string& node, std::uint64_t session, std::vector<GroupReport> groups,
                      Clock::time_point now, std::uint64_t applied_round = 0);
  void close_stream(const std::string& node, std::uint64_t session, Clock::time_point now);

  Result<GroupView> set_group(const GroupSpec& spec);
  Status set_cluster_cap(std::optional<double> cpu_cores);
  std::optional<double> cluster_cap() const;
  std::optional<GroupView> group(const std::string& name) const;
  std::vector<GroupView> groups() const;
  std::vector<NodeView> nodes(Clock::time_point now) const;

  // A round if one is due (round_interval since the last, or a demand shift and
  // min_shift_interval since the last) and this replica may allocate, and it was not withheld.
  std::optional<RoundResult> maybe_round(Clock::time_point now);
  RoundResult round(Clock::time_point now);
  // Replicas: whether this one leads now (took over, as of the last maybe_round); the single
  // manager always does.
  bool leads() const;
  bool may_allocate(Clock::time_point now) const;

  // Follower: the nodes streaming to this replica, for the leader.
  std::map<std::string, RelayedNode> streaming_here(Clock::time_point now) const;
  // Leader: takes the other replicas' nodes in as nodes of its own, streaming through them
  // (`via`). A node held by a live connection elsewhere (here, or another replica) stays there;
  // one no longer published, or published by a replica that has not published anything new for
  // `silence`, counts as disconnected. Returns the acknowledgements that are new, for the
  // hand-over, whether demand moved enough for a round now, and the copies held elsewhere.
  struct RelayUpdate {
    bool shift = false;
    std::vector<std::pair<std::string, std::uint64_t>> applied;  // node, round
    std::map<std::string, std::string> refused;  // node -> the replica whose copy is refused
  };
  RelayUpdate relayed(const std::vector<RelayedReplica>& replicas, Clock::time_point now);
  // Leader: the replica each live relayed node streams to.
  std::map<std::string, std::string> relayed_via(Clock::time_point now) const;

  // The last error since the previous call (a failed save), so the caller reports it once.
  std::optional<Error> take_error();
  const ManagerOptions& options() const { return options_; }

 private:
  struct NodeRecord {
    NodeInfo info;
    std::uint64_t session = 0;
    bool streaming = false;
    Clock::time_point last_seen{};  // last report, stream open or close, or registration
    std::vector<GroupReport> reported;
    std::map<std::string, double> wanted_at_round;  // group -> wanted when last allocated
    std::vector<NodeShare> allocated;
    std::string via;                 // leader: the replica relaying the node ("" streams here)
    std::uint64_t applied_round = 0;  // the node's last acknowledgement
  };
  struct Publisher {
    std::int64_t version = 0;
    Clock::time_point changed{};
  };
  bool live(const NodeRecord& n, Clock::time_point now) const;
  bool here(const NodeRecord& n, Clock::time_point now) const { return n.via.empty() && live(n, now); }
  // Whether `reported` moves a group's demand away from what the node wanted at the last round
  // by more than the shift threshold.
  bool shifted(const NodeRecord& n, const std::vector<GroupReport>& reported) const;
  bool lease_over(const NodeRecord& n, Clock::time_point now) const;
  PersistentState snapshot() const;
  // Single manager: a failed save is kept for take_error() and the change stands. Replica: the
  // failure is returned and the caller undoes the change.
  Status persist();
  // Replicas: the refusal (EREMOTE, naming the leader) of a change.
  std::optional<Error> redirect() const;
  // Replicas: whether this one may allocate now; loads the stored state when it takes over, and
  // every round interval while it follows.
  bool lead_or_follow(Clock::time_point now);
  // Takes groups, the cap and the nodes' allocations from `state`; nodes streaming here keep
  // their sessions and reports; the others' leases start over at `now`.
  void adopt(const PersistentState& state, Clock::time_point now);
  GroupView view(const GroupSpec& spec) const;

  ManagerOptions options_;
  StateStorage* storage_;
  Leadership* leadership_;
  mutable std::mutex mu_;
  bool leading_ = false;  // replicas: took over (state loaded) and may allocate
  std::optional<Clock::time_point> last_sync_;  // replicas: last load of the stored state
  std::map<std::string, GroupSpec> groups_;
  std::optional<double> cluster_cap_;
  std::map<std::string, NodeRecord> nodes_;
  std::map<std::string, Publisher> publishers_;  // leader: the replicas relaying nodes
  std::uint64_t next_session_ = 1;
  std::uint64_t round_ = 0;
  std::optional<Clock::time_point> last_round_;
  bool shift_pending_ = false;
  std::optional<Error> error_;
};

}  // namespace ebb::manager
