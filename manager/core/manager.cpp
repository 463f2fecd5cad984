#include "manager/core/manager.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>
#include <unordered_map>

namespace ebb::manager {
namespace {

bool positive_finite(double x) { return std::isfinite(x) && x > 0; }

}  // namespace

Manager::Manager(ManagerOptions options, StateStorage* storage, Leadership* leadership)
    : options_(options), storage_(storage), leadership_(leadership) {}

Status Manager::restore(Clock::time_point now) {
  auto loaded = storage_->load();
  if (!loaded) return loaded.error();
  std::lock_guard lock(mu_);
  if (*loaded) adopt(**loaded, now);
  return ok_status();
}

void Manager::adopt(const PersistentState& state, Clock::time_point now) {
  groups_.clear();
  for (const auto& g : state.groups) groups_[g.name] = g;
  cluster_cap_ = state.cluster_cap_cpu_cores;
  round_ = std::max(round_, state.round);
  publishers_.clear();
  // Registered here: streaming, or about to open its stream (a follower reloads the state while
  // a node is between Register and Connect).
  const auto ours = [&](const NodeRecord& n) {
    return n.via.empty() && n.session != 0 && (n.streaming || now - n.last_seen < options_.silence);
  };
  for (auto it = nodes_.begin(); it != nodes_.end();)
    it = state.nodes.count(it->first) || ours(it->second) ? std::next(it) : nodes_.erase(it);
  for (const auto& [id, info] : state.nodes) {
    auto& n = nodes_[id];
    auto it = state.allocations.find(id);
    n.allocated = it != state.allocations.end() ? it->second : std::vector<NodeShare>{};
    if (ours(n)) continue;  // its own registration and reports are newer
    n.info = info;
    n.streaming = false;
    n.via.clear();
    // The node may still be using the stored allocation: its lease starts now.
    n.last_seen = now;
  }
}

std::optional<Error> Manager::redirect() const {
  if (!leadership_) return std::nullopt;
  auto elsewhere = leadership_->leader_elsewhere();
  // A write needs the stored state loaded first: it saves the whole state.
  if (!elsewhere && leading_) return std::nullopt;
  const std::string where = !elsewhere ? "it is taking over, retry"
                            : elsewhere->empty() ? "no leader is known yet"
                                                 : "the leader is at " + *elsewhere;
  return Error{"this manager replica does not lead; " + where, "", "", EREMOTE};
}

bool Manager::lead_or_follow(Clock::time_point now) {
  const bool may = leadership_->may_allocate(now);
  {
    std::lock_guard lock(mu_);
    if (may && leading_) return true;
    leading_ = false;
    if (!may && last_sync_ && now - *last_sync_ < options_.round_interval) return false;
    last_sync_ = now;
  }
  auto loaded = storage_->load();
  std::lock_guard lock(mu_);
  if (!loaded) {
    error_ = loaded.error();
    return false;
  }
  if (*loaded) adopt(**loaded, now);
  // Taking over: number rounds past every earlier leader's.
  if (may) round_ = std::max(round_, leadership_->epoch() << 32);
  leading_ = may;
  return may;
}

bool Manager::live(const NodeRecord& n, Clock::time_point now) const {
  return n.streaming && now - n.last_seen < options_.silence;
}

bool Manager::lease_over(const NodeRecord& n, Clock::time_point now) const {
  return !live(n, now) && now - n.last_seen >= options_.lease;
}

Result<std::uint64_t> Manager::register_node(const NodeInfo& info, Clock::time_point now) {
  if (info.id.empty()) return Error{"node id must not be empty"};
  if (!positive_finite(info.cpu_cores)) return Error{"node " + info.id + ": cpu capacity must be positive"};
  std::lock_guard lock(mu_);
  auto& n = nodes_[info.id];
  if (live(n, now))
    return Error{"node id " + info.id + " is already connected" + (n.via.empty() ? "" : " through " + n.via), "", "",
                 EEXIST};
  // A returning node keeps its record (and its share) until its new stream reports.
  n.info = info;
  n.session = next_session_++;
  n.streaming = false;
  n.via.clear();
  n.last_seen = now;
  return n.session;
}

Status Manager::open_stream(const std::string& node, std::uint64_t session, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session) return Error{"node " + node + ": unknown session, register first"};
  if (live(it->second, now)) return Error{"node id " + node + " is already connected", "", "", EEXIST};
  it->second.streaming = true;
  it->second.last_seen = now;
  return ok_status();
}

bool Manager::shifted(const NodeRecord& n, const std::vector<GroupReport>& reported) const {
  for (const auto& r : reported) {
    auto g = groups_.find(r.group);
    if (g == groups_.end()) continue;
    auto before = n.wanted_at_round.find(r.group);
    const double old = before == n.wanted_at_round.end() ? 0 : before->second;
    if (std::abs(r.wanted_cpu_cores - old) > std::max(options_.shift_cores, options_.shift_fraction * g->second.cpu_cores))
      return true;
  }
  return false;
}

Result<bool> Manager::report(const std::string& node, std::uint64_t session, std::vector<GroupReport> groups,
                             Clock::time_point now, std::uint64_t applied_round) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session || !it->second.streaming || !it->second.via.empty())
    return Error{"node " + node + ": session superseded"};
  auto& n = it->second;
  n.last_seen = now;
  n.applied_round = applied_round;
  const bool shift = shifted(n, groups);
  n.reported = std::move(groups);
  shift_pending_ = shift_pending_ || shift;
  return shift;
}

std::map<std::string, RelayedNode> Manager::streaming_here(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::map<std::string, RelayedNode> out;
  for (const auto& [id, n] : nodes_)
    if (here(n, now)) out[id] = {n.info, n.reported, n.applied_round};
  return out;
}

Manager::RelayUpdate Manager::relayed(const std::vector<RelayedReplica>& replicas, Clock::time_point now) {
  std::lock_guard lock(mu_);
  RelayUpdate update;
  std::map<std::string, Publisher> publishers;
  std::set<std::string> published;
  for (const auto& r : replicas) {
    auto known = publishers_.find(r.replica);
    Publisher p = known != publishers_.end() ? known->second : Publisher{};
    if (p.version != r.version) p = {r.version, now};
    publishers[r.replica] = p;
    if (now - p.changed >= options_.silence) continue;  // stalled: its nodes fall silent
    for (const auto& [id, node] : r.nodes) {
      if (node.info.id != id || !positive_finite(node.info.cpu_cores)) continue;
      auto it = nodes_.find(id);
      if (it != nodes_.end() && live(it->second, now) && it->second.via != r.replica) {
        update.refused[id] = r.replica;  // held elsewhere
        continue;
      }
      auto& n = nodes_[id];
      update.shift = shifted(n, node.reported) || update.shift;
      if (node.applied_round != 0 && node.applied_round != n.applied_round)
        update.applied.emplace_back(id, node.applied_round);
      n.info = node.info;
      n.session = 0;
      n.streaming = true;
      n.via = r.replica;
      n.last_seen = now;
      n.reported = node.reported;
      n.applied_round = node.applied_round;
      published.insert(id);
    }
  }
  publishers_ = std::move(publishers);
  // No longer published: disconnected, its lease runs from when it was last seen.
  for (auto& [id, n] : nodes_)
    if (!n.via.empty() && n.streaming && !published.count(id)) n.streaming = false;
  shift_pending_ = shift_pending_ || update.shift;
  return update;
}

std::map<std::string, std::string> Manager::relayed_via(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  for (const auto& [id, n] : nodes_)
    if (!n.via.empty() && live(n, now)) out[id] = n.via;
  return out;
}

bool Manager::leads() const {
  std::lock_guard lock(mu_);
  return !leadership_ || leading_;
}

bool Manager::may_allocate(Clock::time_point now) const { return !leadership_ || leadership_->may_allocate(now); }

void Manager::close_stream(const std::string& node, std::uint64_t session, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.session != session || !it->second.streaming) return;
  it->second.streaming = false;
  it->second.last_seen = now;
}

GroupView Manager::view(const GroupSpec& spec) const {
  GroupView v{spec};
  for (const auto& [id, n] : nodes_) {
    for (const auto& s : n.allocated)
      if (s.group == spec.name) {
        v.allocated_cpu_cores += s.cpu_cores;
        v.allocated_memory_bytes += s.memory_bytes;
      }
    for (const auto& r : n.reported)
      if (r.group == spec.name) v.wanted_cpu_cores += r.wanted_cpu_cores;
  }
  return v;
}

Result<GroupView> Manager::set_group(const GroupSpec& spec) {
  if (spec.name.empty()) return Error{"group name must not be empty"};
  if (!std::isfinite(spec.cpu_cores) || spec.cpu_cores < 0 || !std::isfinite(spec.floor_cpu_cores) ||
      spec.floor_cpu_cores < 0 || spec.floor_cpu_cores > spec.cpu_cores)
    return Error{"group " + spec.name + ": need 0 <= floor <= cpu budget, finite"};
  std::lock_guard lock(mu_);
  if (auto e = redirect()) return *e;
  auto before = groups_;
  groups_[spec.name] = spec;
  if (auto s = persist(); !s) {
    groups_ = std::move(before);
    return s.error();
  }
  shift_pending_ = true;  // a new budget takes effect at once
  return view(spec);
}

Status Manager::set_cluster_cap(std::optional<double> cpu_cores) {
  if (cpu_cores && (!std::isfinite(*cpu_cores) || *cpu_cores < 0)) return Error{"cluster cap must be finite and >= 0"};
  std::lock_guard lock(mu_);
  if (auto e = redirect()) return *e;
  const auto before = std::exchange(cluster_cap_, cpu_cores);
  if (auto s = persist(); !s) {
    cluster_cap_ = before;
    return s.error();
  }
  shift_pending_ = true;
  return ok_status();
}

std::optional<double> Manager::cluster_cap() const {
  std::lock_guard lock(mu_);
  return cluster_cap_;
}

std::optional<GroupView> Manager::group(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return std::nullopt;
  return view(it->second);
}

std::vector<GroupView> Manager::groups() const {
  std::lock_guard lock(mu_);
  std::vector<GroupView> out;
  for (const auto& [name, spec] : groups_) out.push_back(view(spec));
  return out;
}

std::vector<NodeView> Manager::nodes(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  std::vector<NodeView> out;
  for (const auto& [id, n] : nodes_) {
    NodeView v{n.info, live(n, now), {}, n.reported, n.allocated, n.via};
    if (!v.connected)
      v.lease_left = std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                  options_.lease - (now - n.last_seen)));
    out.push_back(std::move(v));
  }
  return out;
}

std::optional<RoundResult> Manager::maybe_round(Clock::time_point now) {
  if (leadership_ && !lead_or_follow(now)) return std::nullopt;
  {
    std::lock_guard lock(mu_);
    const bool due = !last_round_ || now - *last_round_ >= options_.round_interval ||
                     (shift_pending_ && now - *last_round_ >= options_.min_shift_interval);
    if (!due) return std::nullopt;
  }
  auto result = round(now);
  // The save may have taken long: the margin must still hold when the caller sends.
  if (result.withheld || (leadership_ && !leadership_->may_allocate(Clock::now()))) return std::nullopt;
  return result;
}

RoundResult Manager::round(Clock::time_point now) {
  const auto started = Clock::now();
  std::lock_guard lock(mu_);
  RoundResult result;
  std::optional<std::map<std::string, NodeRecord>> before;  // replicas: undone unless stored
  if (leadership_) before = nodes_;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (lease_over(it->second, now)) {
      result.expired.push_back(it->first);
      it = nodes_.erase(it);
    } else {
      ++it;
    }
  }

  AllocationInput in;
  in.params = options_.allocation;
  in.cluster_cap_cpu_cores = cluster_cap_;
  std::unordered_map<std::string, std::uint32_t> group_index;
  std::vector<const std::string*> group_names;
  for (const auto& [name, spec] : groups_) {
    group_index.emplace(name, static_cast<std::uint32_t>(in.groups.size()));
    group_names.push_back(&name);
    in.groups.push_back({spec.cpu_cores, static_cast<double>(spec.memory_bytes), spec.priority, spec.floor_cpu_cores});
  }
  std::vector<NodeRecord*> node_of;
  for (auto& [id, n] : nodes_) {
    const auto index = static_cast<std::uint32_t>(in.nodes.size());
    const bool is_live = live(n, now);
    in.nodes.push_back({n.info.cpu_cores, static_cast<double>(n.info.memory_bytes), !is_live});
    node_of.push_back(&n);
    for (const auto& s : n.allocated)
      if (auto g = group_index.find(s.group); g != group_index.end())
        in.previous.push_back({g->second, index, s.cpu_cores, static_cast<double>(s.memory_bytes)});
    if (!is_live) continue;
    for (const auto& r : n.reported)
      if (auto g = group_index.find(r.group); g != group_index.end())
        in.demands.push_back({g->second, index, r.wanted_cpu_cores, static_cast<double>(r.memory_bytes)});
  }

  // The input is built from validated records, so an error here is a bug: keep the last
  // shares and report it.
  auto allocation = allocate(in);
  const bool changed_nodes = !result.expired.empty();
  bool changed = changed_nodes;
  if (allocation) {
    std::vector<std::vector<NodeShare>> fresh(node_of.size());
    for (const auto& s : allocation->shares)
      fresh[s.node].push_back({*group_names[s.group], s.cpu_cores, static_cast<std::uint64_t>(s.memory_bytes)});
    for (std::size_t i = 0; i < node_of.size(); ++i) {
      auto& n = *node_of[i];
      if (n.allocated != fresh[i]) changed = true;
      n.allocated = std::move(fresh[i]);
      n.wanted_at_round.clear();
      for (const auto& r : n.reported) n.wanted_at_round[r.group] = r.wanted_cpu_cores;
    }
  } else {
    error_ = allocation.error();
  }
  result.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started);
  last_round_ = now;
  shift_pending_ = false;
  ++round_;
  if (changed) {
    if (auto s = persist(); !s) {
      --round_;
      nodes_ = std::move(*before);
      error_ = s.error();
      result.withheld = true;
      result.expired.clear();
      return result;
    }
  }
  result.round = round_;
  const double reserve = options_.allocation.reserve_cpu_cores;
  for (std::size_t i = 0; i < node_of.size(); ++i) {
    const auto& n = *node_of[i];
    if (!live(n, now)) continue;
    result.to_nodes[n.info.id] = {round_, n.allocated, std::max(0.0, n.info.cpu_cores - reserve)};
  }
  return result;
}

PersistentState Manager::snapshot() const {
  PersistentState s;
  for (const auto& [name, spec] : groups_) s.groups.push_back(spec);
  s.cluster_cap_cpu_cores = cluster_cap_;
  s.round = round_;
  for (const auto& [id, n] : nodes_) {
    s.nodes[id] = n.info;
    s.allocations[id] = n.allocated;
  }
  return s;
}

Status Manager::persist() {
  auto s = storage_->save(snapshot());
  if (s || leadership_) return s;
  error_ = s.error();
  return ok_status();
}

std::optional<Error> Manager::take_error() {
  std::lock_guard lock(mu_);
  return std::exchange(error_, std::nullopt);
}

}  // namespace ebb::manager
