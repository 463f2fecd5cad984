#pragma once
// Shrink-first hand-over: a round that moves share from node A to node C must not let C apply
// its larger share while A may still run its larger one, or the limits in force on the nodes
// would sum above the group's budget for a moment. So an increase goes out only once every node
// whose share of the same group (and resource) went down has acknowledged applying the round
// that lowered it; until then the growing node is sent what it may already run.
//
// Bookkeeping per node: the allocations sent and not yet superseded by an acknowledgement. What
// a node may have in force is, per group and resource, the largest value among them (nodes apply
// allocations in order, and an acknowledged round replaces everything sent before it). A node
// that has not yet acknowledged anything sent in this manager's life may run anything (a
// previous life's allocation, or no cap at all): until it does, it holds back the increases of
// its groups elsewhere. Its own first message goes out as it is (there is nothing to compare
// with), unless a node that has acknowledged something may still run more than its target in
// one of the newcomer's groups: then the first message waits for that node's acknowledgement
// (the newcomer keeps running as it did, without this manager's budget). So the hand-over is
// shrink-first from a node's second allocation on, and for a node joining a settled cluster
// from its first. A group whose share is absent from a message counts as 0, as in the
// manager's own accounting.
//
// Pure and single-threaded: the server calls it under its own lock.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "manager/core/manager.h"

namespace ebb::manager {

class HandOver {
 public:
  using Messages = std::map<std::string, NodeAllocation>;

  // A round's allocations (connected nodes only) in; the messages to send now out: every
  // decrease at once, increases held at what the node may already run while another node of the
  // same group has not yet acknowledged its decrease (a newcomer's first message waiting
  // altogether).
  Messages plan(const Messages& targets) {
    for (const auto& [node, target] : targets) {
      nodes_[node].target = target;
      refresh(node);
    }
    Messages out;
    for (const auto& [node, target] : targets)
      if (auto msg = send(node)) out[node] = std::move(*msg);
    return out;
  }

  // The node reports that it applied `round`. Returns the held increases this releases.
  Messages applied(const std::string& node, std::uint64_t round) {
    auto it = nodes_.find(node);
    if (it == nodes_.end()) return {};
    Node& n = it->second;
    const auto match = std::find_if(n.sent.begin(), n.sent.end(), [&](const Sent& s) { return s.round == round; });
    if (match == n.sent.end()) return {};  // not sent in this life, or already superseded
    n.sent.erase(n.sent.begin(), match);
    n.known = true;
    return refresh(node) ? release() : Messages{};
  }

  // The node is gone for good (its lease ended): nothing it ran counts any more.
  Messages forget(const std::string& node) {
    if (!nodes_.count(node)) return {};
    nodes_.at(node).target = {};
    nodes_.at(node).sent.clear();
    nodes_.at(node).known = true;
    refresh(node);
    nodes_.erase(node);
    held_.erase(node);
    return release();
  }

  // Nodes with an increase waiting for another node's acknowledgement.
  const std::set<std::string>& held() const { return held_; }

 private:
  struct Sent {
    std::uint64_t round = 0;
    std::vector<NodeShare> shares;
  };
  struct Pending {
    int cpu = 0, memory = 0;  // per group: nodes that may run more than their target
    int acknowledged = 0;     // of them, nodes that acknowledged something (not newcomers)
  };
  struct Node {
    NodeAllocation target;   // the latest round's allocation for the node
    std::deque<Sent> sent;   // oldest first; the front is the acknowledged one, once known
    bool known = false;      // acknowledged something sent in this life
    std::map<std::string, Pending> decreasing;  // this node's part of pending_
  };

  static const NodeShare* find(const std::vector<NodeShare>& shares, const std::string& group) {
    for (const auto& s : shares)
      if (s.group == group) return &s;
    return nullptr;
  }

  // The most the node may have in force for `group`, over everything sent and not superseded.
  static NodeShare bound(const Node& n, const std::string& group) {
    NodeShare b{group};
    for (const auto& s : n.sent)
      if (const auto* share = find(s.shares, group)) {
        b.cpu_cores = std::max(b.cpu_cores, share->cpu_cores);
        b.memory_bytes = std::max(b.memory_bytes, share->memory_bytes);
      }
    return b;
  }

  // Per group the node runs or ran: whether it may run more than its target.
  static std::map<std::string, Pending> decreases(const Node& n) {
    std::map<std::string, Pending> out;
    std::set<std::string> groups;
    for (const auto& s : n.target.groups) groups.insert(s.group);
    for (const auto& sent : n.sent)
      for (const auto& s : sent.shares) groups.insert(s.group);
    for (const auto& group : groups) {
      const auto* target = find(n.target.groups, group);
      if (!n.known) {
        if (target) out[group] = {1, 1, 0};  // may run anything until it acknowledges
        continue;
      }
      const NodeShare b = bound(n, group);
      Pending p{b.cpu_cores > (target ? target->cpu_cores : 0) ? 1 : 0,
                b.memory_bytes > (target ? target->memory_bytes : 0) ? 1 : 0, 0};
      p.acknowledged = p.cpu || p.memory ? 1 : 0;
      if (p.acknowledged) out[group] = p;
    }
    return out;
  }

  // Recomputes the node's pending decreases; returns whether some group's count fell to zero.
  bool refresh(const std::string& node) {
    Node& n = nodes_.at(node);
    auto next = decreases(n);
    for (const auto& [group, p] : n.decreasing) {
      pending_[group].cpu -= p.cpu;
      pending_[group].memory -= p.memory;
      pending_[group].acknowledged -= p.acknowledged;
    }
    for (const auto& [group, p] : next) {
      pending_[group].cpu += p.cpu;
      pending_[group].memory += p.memory;
      pending_[group].acknowledged += p.acknowledged;
    }
    bool cleared = false;
    for (const auto& [group, p] : n.decreasing) {
      const Pending& total = pending_[group];
      cleared = cleared || (p.cpu && total.cpu == 0) || (p.memory && total.memory == 0) ||
                (p.acknowledged && total.acknowledged == 0);
    }
    std::erase_if(pending_, [](const auto& entry) {
      return entry.second.cpu == 0 && entry.second.memory == 0 && entry.second.acknowledged == 0;
    });
    n.decreasing = std::move(next);
    return cleared;
  }

  // The message for `node` now: its target, with every increase that a pending decrease of the
  // same group and resource would overlap held at the node's bound (a node decreasing a
  // resource is not increasing it, so its own decreases may count). The first message to a node
  // goes as it is (there is nothing sent to compare with), or not at all while an acknowledged
  // node of one of its groups has a decrease pending. Recorded as sent.
  std::optional<NodeAllocation> send(const std::string& node) {
    Node& n = nodes_.at(node);
    if (!n.known && n.sent.empty())
      for (const auto& share : n.target.groups)
        if (auto p = pending_.find(share.group); p != pending_.end() && p->second.acknowledged > 0) {
          held_.insert(node);
          return std::nullopt;
        }
    NodeAllocation msg = n.target;
    if (n.known || !n.sent.empty()) {
      for (auto& share : msg.groups) {
        const auto p = pending_.find(share.group);
        if (p == pending_.end()) continue;
        const NodeShare b = bound(n, share.group);
        if (p->second.cpu > 0) share.cpu_cores = std::min(share.cpu_cores, b.cpu_cores);
        if (p->second.memory > 0) share.memory_bytes = std::min(share.memory_bytes, b.memory_bytes);
      }
    }
    if (msg.groups == n.target.groups) held_.erase(node);
    else held_.insert(node);
    n.sent.push_back({msg.round, msg.groups});
    refresh(node);
    return msg;
  }

  // Held nodes whose message would now differ get it again.
  Messages release() {
    Messages out;
    for (const auto& node : std::vector<std::string>(held_.begin(), held_.end())) {
      auto& sent = nodes_.at(node).sent;
      if (sent.empty()) {  // a newcomer's first message, waiting
        if (auto msg = send(node)) out[node] = std::move(*msg);
        continue;
      }
      const auto before = sent.back().shares;
      NodeAllocation msg = *send(node);
      if (msg.groups == before) {
        sent.pop_back();  // still held: nothing new to send
        refresh(node);
      } else {
        out[node] = std::move(msg);
      }
    }
    return out;
  }

  std::map<std::string, Node> nodes_;
  std::map<std::string, Pending> pending_;
  std::set<std::string> held_;
};

}  // namespace ebb::manager
