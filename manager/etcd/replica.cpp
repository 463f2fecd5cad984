#include "manager/etcd/replica.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace ebb::manager::etcd {
namespace {

// Compacting the store's history every so many saves bounds etcd's database: every round that
// changes an allocation writes the whole state again.
constexpr int kSavesPerCompaction = 100;

// The value at `key` parsed by `parse(text, source)`; nullopt when the key is absent.
template <typename T, typename Parse>
Result<std::optional<T>> get_parsed(Client& client, const std::string& key, Parse parse) {
  auto kv = client.get(key);
  if (!kv) return kv.error();
  if (!*kv) return std::optional<T>{};
  auto value = parse((*kv)->value, "etcd key " + key);
  if (!value) return value.error();
  return std::optional<T>(std::move(*value));
}

}  // namespace

void Compaction::after_write(Client& client, std::int64_t revision) {
  if (++writes_ >= kSavesPerCompaction && client.compact(revision)) writes_ = 0;  // else retried at the next write
}

Election::Election(const EtcdOptions& options, std::string advertise)
    : client_(options.endpoints, options.request_timeout),
      leader_key_(options.prefix + "leader"),
      advertise_(std::move(advertise)),
      requested_ttl_(options.lease_ttl),
      safety_fraction_(options.safety_fraction) {}

Election::~Election() { stop(); }

void Election::start() {
  thread_ = std::thread([this] {
    const auto period = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100), requested_ttl_ / 6);
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      step();
      lock.lock();
      wake_.wait_for(lock, period, [&] { return stopping_; });
    }
  });
}

void Election::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    revision_ = 0;  // no allocation from now on
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Best effort: otherwise the lease expires after its TTL.
  if (const auto lease = std::exchange(lease_, 0); lease != 0) (void)client_.revoke_lease(lease);
}

void Election::unreachable(const Error& e) {
  std::lock_guard lock(mu_);
  if (std::exchange(reachable_, false)) spdlog::warn("etcd election: {}", e.to_string());
}

void Election::step() {
  std::int64_t lease, held;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    lease = lease_;
    held = revision_;
  }
  const auto sent = Clock::now();
  if (lease == 0) {
    auto granted = client_.grant_lease(requested_ttl_);
    if (!granted) return unreachable(granted.error());
    std::lock_guard lock(mu_);
    lease = lease_ = granted->id;
    ttl_seconds_ = granted->ttl_seconds;
    renewed_ = sent;
  } else {
    auto ttl = client_.keep_alive(lease);
    if (!ttl) return unreachable(ttl.error());
    std::lock_guard lock(mu_);
    if (*ttl <= 0) {  // the lease expired (we were cut off for longer than the TTL)
      if (revision_ != 0) spdlog::warn("etcd election: our lease expired; no longer the leader");
      lease_ = revision_ = 0;
      renewed_.reset();
      return;
    }
    renewed_ = sent;
  }
  {
    std::lock_guard lock(mu_);
    if (!std::exchange(reachable_, true)) spdlog::info("etcd election: etcd reachable again");
  }

  if (held == 0) {
    auto txn = client_.put_if_created(leader_key_, 0, leader_key_, advertise_, lease);
    if (!txn) return unreachable(txn.error());
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (txn->succeeded) {
      revision_ = txn->revision;
    } else if (txn->guard && txn->guard->lease == lease) {
      revision_ = txn->guard->create_revision;  // an earlier attempt won but its answer was lost
    } else {
      if (txn->guard && leader_ != txn->guard->value) spdlog::info("etcd election: following {}", txn->guard->value);
      leader_ = txn->guard ? txn->guard->value : "";
      followed_ = txn->guard ? txn->guard->create_revision : 0;
      return;
    }
    spdlog::info("etcd election: leader as {} (leader key revision {})", advertise_, revision_);
    return;
  }
  // Still ours? The key goes away only with our lease, or if an operator deletes it.
  auto current = client_.get(leader_key_);
  if (!current) return unreachable(current.error());
  std::lock_guard lock(mu_);
  if (*current && (*current)->create_revision == held) return;
  spdlog::warn("etcd election: the leader key was taken over; no longer the leader");
  revision_ = 0;
  leader_ = *current ? (*current)->value : "";
  followed_ = *current ? (*current)->create_revision : 0;
}

bool Election::may_allocate(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return revision_ != 0 && renewed_ &&
         now - *renewed_ < std::chrono::duration<double>(safety_fraction_ * static_cast<double>(ttl_seconds_));
}

std::optional<std::string> Election::leader_elsewhere() const {
  std::lock_guard lock(mu_);
  if (revision_ != 0) return std::nullopt;
  return leader_;
}

std::int64_t Election::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

std::int64_t Election::leader_revision() const {
  std::lock_guard lock(mu_);
  return revision_ != 0 ? revision_ : followed_;
}

std::int64_t Election::lease() const {
  std::lock_guard lock(mu_);
  return lease_;
}

EtcdRelay::EtcdRelay(const EtcdOptions& options, const Election& election)
    : client_(options.endpoints, options.request_timeout),
      election_(election),
      nodes_prefix_(options.prefix + "nodes/"),
      outbox_key_(options.prefix + "allocations") {}

Status EtcdRelay::publish(const std::map<std::string, RelayedNode>& nodes) {
  const auto lease = election_.lease();
  if (lease == 0) return Error{"not published: this replica holds no etcd lease yet"};
  return client_.put(nodes_prefix_ + replica(), to_json(nodes), lease);
}

Result<std::vector<RelayedReplica>> EtcdRelay::collect() {
  auto kvs = client_.get_prefix(nodes_prefix_);
  if (!kvs) return kvs.error();
  std::vector<RelayedReplica> out;
  for (const auto& kv : *kvs) {
    const std::string name = kv.key.substr(nodes_prefix_.size());
    if (name == replica()) continue;  // published while this replica followed
    auto nodes = parse_relayed_nodes(kv.value, "etcd key " + kv.key);
    if (!nodes) return nodes.error();
    out.push_back({name, kv.mod_revision, std::move(*nodes)});
  }
  return out;
}

Status EtcdRelay::send(const Outbox& outbox) {
  const auto revision = election_.revision();
  if (revision == 0) return Error{"not sent: this replica does not hold the leader key"};
  Outbox fenced = outbox;
  fenced.leader = revision;
  auto txn = client_.put_if_created(election_.leader_key(), revision, outbox_key_, to_json(fenced));
  if (!txn) return txn.error();
  if (!txn->succeeded) return Error{"not sent: the leader key is no longer ours"};
  compaction_.after_write(client_, txn->revision);
  return ok_status();
}

Result<std::optional<Outbox>> EtcdRelay::receive() { return get_parsed<Outbox>(client_, outbox_key_, parse_outbox); }

EtcdStateStorage::EtcdStateStorage(const EtcdOptions& options, const Election& election)
    : client_(options.endpoints, options.request_timeout), election_(election), state_key_(options.prefix + "state") {}

Result<std::optional<PersistentState>> EtcdStateStorage::load() {
  return get_parsed<PersistentState>(client_, state_key_, parse_state_json);
}

Status EtcdStateStorage::save(const PersistentState& state) {
  const auto revision = election_.revision();
  if (revision == 0) return Error{"not saved: this replica does not hold the leader key"};
  auto txn = client_.put_if_created(election_.leader_key(), revision, state_key_, to_json(state));
  if (!txn) return txn.error();
  if (!txn->succeeded)
    return Error{"not saved: the leader key is no longer ours (now " + (txn->guard ? txn->guard->value : "absent") + ")"};
  compaction_.after_write(client_, txn->revision);
  return ok_status();
}

}  // namespace ebb::manager::etcd
