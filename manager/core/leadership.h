#pragma once
// Which manager replica may allocate. A single manager always may (no Leadership); replicas on
// etcd elect one leader (manager/etcd). The Manager asks before every round, and sends writes
// elsewhere while another replica leads (node streams it relays: manager/core/relay.h).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ebb::manager {

class Leadership {
 public:
  virtual ~Leadership() = default;
  // Whether this replica holds the leadership at `now` with a margin: a successor cannot have
  // been elected yet, so what it allocates now cannot overlap a successor's allocations.
  virtual bool may_allocate(std::chrono::steady_clock::time_point now) const = 0;
  // nullopt while this replica holds the leadership (even without the margin); otherwise the
  // leader's address for clients ("" while none is known).
  virtual std::optional<std::string> leader_elsewhere() const = 0;
  // Grows with every change of leader (etcd: the leader key's create revision); 0 unknown. A new
  // leader numbers its rounds from epoch << 32, so that no node's acknowledgement of an earlier
  // leader's round can be taken for one of its own.
  virtual std::uint64_t epoch() const { return 0; }
};

}  // namespace ebb::manager
