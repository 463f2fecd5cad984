#pragma once
// Node streams on replicas that do not lead (docs/etcd.md "Nodes on a follower"). A follower
// publishes the latest report of every node streaming to it; the leader reads them into its
// rounds as nodes of its own, and stores the messages its hand-over decided for them in an
// outbox that only the leader can write (fenced like its state saves); the follower sends each
// of its nodes the messages addressed to it, from the outbox of the leader it currently follows
// only. The etcd implementation is manager/etcd/replica.h; the formats are here, pure.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/error.h"
#include "manager/core/manager.h"

namespace ebb::manager {

class Relay {
 public:
  virtual ~Relay() = default;
  // This replica's address, as it names itself in what it publishes and in the outbox's `via`.
  virtual const std::string& replica() const = 0;
  // Follower: the nodes streaming here now (replaces what it published before; gone with it).
  virtual Status publish(const std::map<std::string, RelayedNode>& nodes) = 0;
  // Leader: what every other replica published.
  virtual Result<std::vector<RelayedReplica>> collect() = 0;
  // Leader: the latest message for every node on another replica; stored only while this
  // replica holds the leadership (the `leader` field is filled in by the implementation).
  virtual Status send(const Outbox& outbox) = 0;
  // Follower: the stored outbox (nullopt: none yet).
  virtual Result<std::optional<Outbox>> receive() = 0;
  // The leader epoch this replica knows (its own while it leads); 0: none known.
  virtual std::int64_t current_leader() const = 0;
};

std::string to_json(const std::map<std::string, RelayedNode>& nodes);
Result<std::map<std::string, RelayedNode>> parse_relayed_nodes(std::string_view text, std::string_view source);
std::string to_json(const Outbox& outbox);
Result<Outbox> parse_outbox(std::string_view text, std::string_view source);

// Follower side, pure: which of the outbox's messages to send now, given what was sent to each
// node before (leader epoch and sequence), and which streams to end; updates `sent`. Only an
// outbox of `leader` (the epoch this replica follows now) is relayed, only what is addressed to
// `replica`, each message once, and nothing older than what the node already got.
struct RelayedSent {
  std::int64_t leader = 0;
  std::uint64_t seq = 0;
  std::vector<std::uint64_t> rounds;  // rounds sent under `leader`, the latest last
};
struct ToRelay {
  std::map<std::string, NodeAllocation> send;
  std::vector<std::string> refuse;  // node ids held by another connection
};
ToRelay to_relay(const Outbox& outbox, std::int64_t leader, const std::string& replica,
                 std::map<std::string, RelayedSent>& sent);

}  // namespace ebb::manager
