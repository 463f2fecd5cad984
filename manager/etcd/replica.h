#pragma once
// Manager replicas on etcd: the election of the one replica that allocates, and the state
// storage that only the elected replica can write (docs/etcd.md).
//
// Election: each replica keeps a lease alive and tries to create the leader key bound to it in
// a txn that succeeds only if the key is absent. The holder may allocate only while its last
// successful keepalive was sent less than safety_fraction x TTL ago; a successor can create the
// key only after the holder's lease expired, at least a full TTL after that keepalive was sent.
// Node streams on followers are relayed through etcd (EtcdRelay).
// Fencing: every save is a txn conditioned on the leader key's create revision being the one
// this replica created, so a deposed replica's write fails instead of overwriting its
// successor's state.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "manager/core/leadership.h"
#include "manager/core/relay.h"
#include "manager/core/storage.h"
#include "manager/etcd/client.h"

namespace ebb::manager::etcd {

struct EtcdOptions {
  std::vector<std::string> endpoints{"127.0.0.1:2379"};
  std::string prefix = "/ebb/manager/";  // keys: PREFIX leader, PREFIX state
  std::chrono::seconds lease_ttl{3};
  double safety_fraction = 0.5;  // of the TTL
  std::string advertise;         // this replica's address for nodes and clients ("": its listen address)
  std::chrono::milliseconds request_timeout{500};
};

class Election : public Leadership {
 public:
  Election(const EtcdOptions& options, std::string advertise);
  ~Election() override;
  Election(const Election&) = delete;
  Election& operator=(const Election&) = delete;

  // Starts campaigning (a thread that keeps the lease alive every TTL/6).
  void start();
  // Stops allocating at once, then revokes the lease so that a follower takes over without
  // waiting for the TTL. Idempotent.
  void stop();

  bool may_allocate(std::chrono::steady_clock::time_point now) const override;
  std::optional<std::string> leader_elsewhere() const override;
  // The create revision of the leader key while this replica holds it; 0 otherwise.
  std::int64_t revision() const;
  // The leader key's create revision, whoever holds it, as last seen (0: no leader known).
  std::int64_t leader_revision() const;
  std::uint64_t epoch() const override { return static_cast<std::uint64_t>(leader_revision()); }
  // This replica's lease (0: none granted yet); keys bound to it vanish with the replica.
  std::int64_t lease() const;
  const std::string& advertise() const { return advertise_; }
  const std::string& leader_key() const { return leader_key_; }

  // One campaign step: grant or keep alive the lease, then win or verify the leader key.
  // start() runs it periodically; tests call it directly.
  void step();

 private:
  void unreachable(const Error& e);

  using Clock = std::chrono::steady_clock;
  Client client_;
  const std::string leader_key_;
  const std::string advertise_;
  const std::chrono::seconds requested_ttl_;
  const double safety_fraction_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
  std::int64_t lease_ = 0;
  std::int64_t ttl_seconds_ = 0;    // as etcd granted it
  std::int64_t revision_ = 0;       // of the leader key we hold
  std::optional<Clock::time_point> renewed_;  // when the last successful keepalive was sent
  std::string leader_;              // the leader's address while we follow
  std::int64_t followed_ = 0;       // the leader key's create revision while we follow
  bool reachable_ = true;           // for logging a lost etcd once
};

// Compacts etcd's history every so many of the leader's writes (each rewrites a whole value).
class Compaction {
 public:
  void after_write(Client& client, std::int64_t revision);

 private:
  int writes_ = 0;
};

// Node streams on followers (manager/core/relay.h) through etcd: each follower publishes its
// nodes under PREFIX nodes/ADDRESS, bound to its lease; the leader's outbox is PREFIX
// allocations, written in a txn on the leader key's create revision, as a save is.
class EtcdRelay : public Relay {
 public:
  EtcdRelay(const EtcdOptions& options, const Election& election);
  const std::string& replica() const override { return election_.advertise(); }
  Status publish(const std::map<std::string, RelayedNode>& nodes) override;
  Result<std::vector<RelayedReplica>> collect() override;
  Status send(const Outbox& outbox) override;
  Result<std::optional<Outbox>> receive() override;
  std::int64_t current_leader() const override { return election_.leader_revision(); }

 private:
  Client client_;
  const Election& election_;
  const std::string nodes_prefix_;
  const std::string outbox_key_;
  Compaction compaction_;
};

// The manager's whole state as one JSON document under PREFIX state (the format of the state
// file), written only by the elected replica.
class EtcdStateStorage : public StateStorage {
 public:
  EtcdStateStorage(const EtcdOptions& options, const Election& election);
  Result<std::optional<PersistentState>> load() override;
  Status save(const PersistentState& state) override;

 private:
  Client client_;
  const Election& election_;
  const std::string state_key_;
  Compaction compaction_;
};

}  // namespace ebb::manager::etcd
