#include "manager/service/server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "ebb/v1/manager.grpc.pb.h"
#include "manager/service/convert.h"
#include "manager/service/handover.h"
#include "manager/tls/tls.h"

namespace ebb::manager {
namespace {

namespace pb = ebb::v1;

grpc::Status invalid(const Error& e) { return {grpc::StatusCode::INVALID_ARGUMENT, e.message}; }

// A node id the caller's certificate does not name is refused before it touches any state.
std::optional<grpc::Status> refused_identity(const grpc::ServerContextBase& ctx, const std::string& node_id) {
  const auto auth = ctx.auth_context();
  if (!auth) return std::nullopt;
  if (auto s = check_node_identity(node_id, *auth); !s)
    return grpc::Status{grpc::StatusCode::PERMISSION_DENIED, s.error().message};
  return std::nullopt;
}

// At most one write in flight on a stream; a newer message replaces one not yet sent, since
// only the latest allocation matters to a node or a watcher.
template <typename Msg>
class LatestOnly {
 public:
  // The message to start writing now, or nullptr when a write is in flight (it was queued).
  const Msg* offer(Msg msg) {
    std::lock_guard lock(mu_);
    if (busy_) {
      pending_ = std::move(msg);
      return nullptr;
    }
    busy_ = true;
    current_ = std::move(msg);
    return &current_;
  }
  // After a write completed: the queued message to write next, or nullptr.
  const Msg* done() {
    std::lock_guard lock(mu_);
    if (!pending_) {
      busy_ = false;
      return nullptr;
    }
    current_ = std::move(*pending_);
    pending_.reset();
    return &current_;
  }

 private:
  std::mutex mu_;
  bool busy_ = false;
  Msg current_;
  std::optional<Msg> pending_;
};

class NodeStream;
class Watcher;

}  // namespace

struct ManagerServer::Impl : pb::ManagerService::CallbackService {
  Manager& manager;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::chrono::milliseconds poll;
  std::thread round_loop;
  std::mutex mu;  // guards streams, watchers, stopping, last_round, handover
  std::condition_variable wake;
  bool stopping = false;
  bool stopped = false;
  std::map<std::string, NodeStream*> streams;
  std::set<Watcher*> watchers;
  std::optional<pb::AllocationRound> last_round;
  HandOver handover;

  // Relaying (replicas only). Round loop thread, except the leader's outbox (under mu).
  Relay* relay = nullptr;
  std::chrono::milliseconds relay_interval{}, relay_heartbeat{};
  bool relay_leading = false;
  Clock::time_point relay_last{}, published_at{};
  std::optional<std::map<std::string, RelayedNode>> published;
  std::optional<std::string> relay_error;
  Outbox outbox;  // leader: the latest message for each node on another replica
  bool outbox_dirty = false;
  std::uint64_t outbox_seq = 0;
  std::set<std::string> refused_before;  // node ids warned about once
  std::map<std::string, RelayedSent> relayed;  // follower: what each of its nodes was sent

  Impl(Manager& m, const ServerOptions& o)
      : manager(m), poll(o.poll), relay(o.relay), relay_interval(o.relay_interval), relay_heartbeat(o.relay_heartbeat) {}

  grpc::ServerUnaryReactor* Register(grpc::CallbackServerContext* ctx, const pb::RegisterRequest* req,
                                     pb::RegisterResponse* resp) override;
  grpc::ServerBidiReactor<pb::NodeReport, pb::NodeAllocation>* Connect(grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* SetGroupBudget(grpc::CallbackServerContext* ctx, const pb::SetGroupBudgetRequest* req,
                                           pb::Group* resp) override;
  grpc::ServerUnaryReactor* GetGroup(grpc::CallbackServerContext* ctx, const pb::GetGroupRequest* req,
                                     pb::Group* resp) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* ctx, const pb::ListGroupsRequest* req,
                                       pb::ListGroupsResponse* resp) override;
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* ctx, const pb::ListNodesRequest* req,
                                      pb::ListNodesResponse* resp) override;
  grpc::ServerWriteReactor<pb::AllocationRound>* WatchAllocations(grpc::CallbackServerContext* ctx,
                                                                  const pb::WatchAllocationsRequest* req) override;
  grpc::ServerUnaryReactor* SetClusterCap(grpc::CallbackServerContext* ctx, const pb::SetClusterCapRequest* req,
                                          pb::SetClusterCapResponse* resp) override;

  void run_rounds();
  void sync_leadership();
  void exchange(Clock::time_point now);
  void lead_relayed(Clock::time_point now);
  void follow_relayed(Clock::time_point now);
  void flush_outbox(Clock::time_point now);
  void relay_failed(const Status& s);
  void publish(const RoundResult& result);
  void send_locked(const HandOver::Messages& messages);
  void node_applied(const std::string& node, std::uint64_t round);
};

namespace {

grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx, grpc::Status status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

// A node's Connect stream: the first report names the node and its session, every report goes
// to the Manager, and the round loop pushes allocations through send().
class NodeStream : public grpc::ServerBidiReactor<pb::NodeReport, pb::NodeAllocation> {
 public:
  NodeStream(ManagerServer::Impl& impl, grpc::CallbackServerContext* ctx) : impl_(impl), ctx_(ctx) { StartRead(&in_); }

  void send(pb::NodeAllocation msg) {
    if (const auto* m = writer_.offer(std::move(msg))) StartWrite(m);
  }

  // Ends the stream from the round loop, under impl_.mu, once removed from impl_.streams (so
  // it is not deleted meanwhile).
  void refuse(grpc::Status status) {
    if (finished_.exchange(true)) return;
    impl_.manager.close_stream(node_, session_, Clock::now());
    Finish(std::move(status));
  }

  void OnReadDone(bool ok) override {
    if (!ok) return end(grpc::Status::OK);
    const auto now = Clock::now();
    if (node_.empty()) {
      if (auto refused = refused_identity(*ctx_, in_.node_id())) return end(*refused);
      if (auto s = impl_.manager.open_stream(in_.node_id(), in_.session(), now); !s)
        return end({grpc::StatusCode::FAILED_PRECONDITION, s.error().message});
      node_ = in_.node_id();
      session_ = in_.session();
      std::lock_guard lock(impl_.mu);
      impl_.streams[node_] = this;
    }
    auto shift = impl_.manager.report(node_, session_, from_proto(in_.groups()), now, in_.applied_round());
    if (!shift) return end({grpc::StatusCode::FAILED_PRECONDITION, shift.error().message});
    if (*shift) impl_.wake.notify_one();
    if (in_.applied_round() > 0) impl_.node_applied(node_, in_.applied_round());
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return;
    if (const auto* m = writer_.done()) StartWrite(m);
  }

  void OnDone() override {
    detach();
    delete this;
  }

 private:
  // No more sends once the stream is finishing.
  void detach() {
    if (node_.empty()) return;
    std::lock_guard lock(impl_.mu);
    if (auto it = impl_.streams.find(node_); it != impl_.streams.end() && it->second == this) impl_.streams.erase(it);
  }
  void end(grpc::Status status) {
    if (finished_.exchange(true)) return;
    if (!node_.empty()) impl_.manager.close_stream(node_, session_, Clock::now());
    detach();
    Finish(std::move(status));
  }

  ManagerServer::Impl& impl_;
  grpc::CallbackServerContext* ctx_;
  pb::NodeReport in_;
  std::string node_;
  std::uint64_t session_ = 0;
  LatestOnly<pb::NodeAllocation> writer_;
  std::atomic<bool> finished_{false};
};

class Watcher : public grpc::ServerWriteReactor<pb::AllocationRound> {
 public:
  explicit Watcher(ManagerServer::Impl& impl) : impl_(impl) {}

  void send(pb::AllocationRound msg) {
    if (const auto* m = writer_.offer(std::move(msg))) StartWrite(m);
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return end();
    if (const auto* m = writer_.done()) StartWrite(m);
  }
  void OnCancel() override { end(); }
  void OnDone() override {
    detach();
    delete this;
  }

 private:
  void detach() {
    std::lock_guard lock(impl_.mu);
    impl_.watchers.erase(this);
  }
  // A watch ends only when the watcher goes away or the server stops; finish exactly once.
  void end() {
    if (finished_.exchange(true)) return;
    detach();
    Finish(grpc::Status::CANCELLED);
  }

  std::atomic<bool> finished_{false};
  ManagerServer::Impl& impl_;
  LatestOnly<pb::AllocationRound> writer_;
};

}  // namespace

grpc::ServerUnaryReactor* ManagerServer::Impl::Register(grpc::CallbackServerContext* ctx, const pb::RegisterRequest* req,
                                                        pb::RegisterResponse* resp) {
  if (auto refused = refused_identity(*ctx, req->node_id())) {
    spdlog::warn("refused node {} from {}: {}", req->node_id(), ctx->peer(), refused->error_message());
    return finish(ctx, *refused);
  }
  NodeInfo info{req->node_id(), req->cpu_cores(), req->memory_bytes(), {req->labels().begin(), req->labels().end()}};
  auto session = manager.register_node(info, Clock::now());
  if (!session) {
    const bool duplicate = session.error().errno_value == EEXIST;
    return finish(ctx, {duplicate ? grpc::StatusCode::ALREADY_EXISTS : grpc::StatusCode::INVALID_ARGUMENT,
                        session.error().message});
  }
  resp->set_session(*session);
  resp->set_report_interval_ms(static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(manager.options().report_interval).count()));
  resp->set_lease_ms(
      static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(manager.options().lease).count()));
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerBidiReactor<pb::NodeReport, pb::NodeAllocation>* ManagerServer::Impl::Connect(grpc::CallbackServerContext* ctx) {
  return new NodeStream(*this, ctx);
}

grpc::ServerUnaryReactor* ManagerServer::Impl::SetGroupBudget(grpc::CallbackServerContext* ctx,
                                                              const pb::SetGroupBudgetRequest* req, pb::Group* resp) {
  auto view = manager.set_group(from_proto(req->group()));
  if (!view) return finish(ctx, invalid(view.error()));
  *resp = to_proto(*view);
  wake.notify_one();
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ManagerServer::Impl::GetGroup(grpc::CallbackServerContext* ctx, const pb::GetGroupRequest* req,
                                                        pb::Group* resp) {
  auto view = manager.group(req->name());
  if (!view) return finish(ctx, {grpc::StatusCode::NOT_FOUND, "no group " + req->name()});
  *resp = to_proto(*view);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ManagerServer::Impl::ListGroups(grpc::CallbackServerContext* ctx, const pb::ListGroupsRequest*,
                                                          pb::ListGroupsResponse* resp) {
  for (const auto& g : manager.groups()) *resp->add_groups() = to_proto(g);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ManagerServer::Impl::ListNodes(grpc::CallbackServerContext* ctx, const pb::ListNodesRequest*,
                                                         pb::ListNodesResponse* resp) {
  for (const auto& n : manager.nodes(Clock::now())) *resp->add_nodes() = to_proto(n);
  return finish(ctx, grpc::Status::OK);
}

grpc::ServerWriteReactor<pb::AllocationRound>* ManagerServer::Impl::WatchAllocations(grpc::CallbackServerContext*,
                                                                                      const pb::WatchAllocationsRequest*) {
  auto* w = new Watcher(*this);
  std::lock_guard lock(mu);
  watchers.insert(w);
  if (last_round) w->send(*last_round);
  return w;
}

grpc::ServerUnaryReactor* ManagerServer::Impl::SetClusterCap(grpc::CallbackServerContext* ctx,
                                                             const pb::SetClusterCapRequest* req,
                                                             pb::SetClusterCapResponse*) {
  const auto cap = req->cpu_cores() > 0 ? std::optional<double>(req->cpu_cores()) : std::nullopt;
  if (auto s = manager.set_cluster_cap(cap); !s) return finish(ctx, invalid(s.error()));
  wake.notify_one();
  return finish(ctx, grpc::Status::OK);
}

void ManagerServer::Impl::publish(const RoundResult& result) {
  const auto now = Clock::now();
  pb::AllocationRound summary;
  summary.set_round(result.round);
  summary.set_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
  summary.set_round_duration_us(static_cast<double>(result.duration.count()));
  summary.set_cluster_cap_cpu_cores(manager.cluster_cap().value_or(0));
  for (const auto& g : manager.groups()) *summary.add_groups() = to_proto(g);
  for (const auto& n : manager.nodes(now)) *summary.add_nodes() = to_proto(n);

  std::lock_guard lock(mu);
  for (const auto& node : result.expired) send_locked(handover.forget(node));
  send_locked(handover.plan(result.to_nodes));
  for (auto* w : watchers) w->send(summary);
  last_round = std::move(summary);
}

void ManagerServer::Impl::send_locked(const HandOver::Messages& messages) {
  for (const auto& [node, alloc] : messages) {
    if (auto it = streams.find(node); it != streams.end()) {
      it->second->send(to_proto(alloc));
    } else if (relay && relay_leading) {  // a node on another replica, or gone
      outbox.nodes[node] = {"", ++outbox_seq, alloc};
      outbox_dirty = true;
    }
  }
}

void ManagerServer::Impl::relay_failed(const Status& s) {
  if (s) {
    if (std::exchange(relay_error, std::nullopt)) spdlog::info("relay: working again");
    return;
  }
  if (relay_error != s.error().message) spdlog::warn("relay: {}", s.error().to_string());
  relay_error = s.error().message;
}

// On a change of leadership the hand-over starts over: what the nodes were sent in another life
// is unknown to it, so it holds their groups' increases until they acknowledge. Checked before
// relaying and before a round is planned, so that no round of a new leader is planned by the
// hand-over of its follower days (and then forgotten).
void ManagerServer::Impl::sync_leadership() {
  const bool leads = manager.leads();
  if (leads == relay_leading) return;
  {
    std::lock_guard lock(mu);
    relay_leading = leads;
    handover = HandOver{};
    outbox = {};
    outbox_dirty = false;
    relayed.clear();
  }
  published.reset();
  // Our nodes are the leader's own now: nothing of ours to relay.
  if (leads) relay_failed(relay->publish({}));
}

void ManagerServer::Impl::exchange(Clock::time_point now) {
  sync_leadership();
  const bool leads = relay_leading;
  if (now - relay_last < relay_interval) return;
  relay_last = now;
  if (leads) lead_relayed(now);
  else follow_relayed(now);
}

void ManagerServer::Impl::lead_relayed(Clock::time_point now) {
  auto replicas = relay->collect();
  if (!replicas) return relay_failed(replicas.error());
  auto update = manager.relayed(*replicas, now);
  if (update.shift) wake.notify_one();
  std::lock_guard lock(mu);
  for (const auto& [node, round] : update.applied) send_locked(handover.applied(node, round));
  if (update.refused != outbox.refused) {
    for (const auto& [node, via] : update.refused)
      if (!outbox.refused.count(node))
        spdlog::log(refused_before.insert(node).second ? spdlog::level::warn : spdlog::level::debug,
                    "node {}: refused through {}: the id is connected elsewhere", node, via);
    outbox.refused = std::move(update.refused);
    outbox_dirty = true;
  }
}

// The leader's messages for the nodes relayed now; stored only within the leader's margin.
void ManagerServer::Impl::flush_outbox(Clock::time_point now) {
  const auto via = manager.relayed_via(now);
  Outbox copy;
  {
    std::lock_guard lock(mu);
    if (!relay_leading || !outbox_dirty) return;
    std::erase_if(outbox.nodes, [&](const auto& entry) { return !via.count(entry.first); });
    for (auto& [node, message] : outbox.nodes) message.via = via.at(node);
    copy = outbox;
    outbox_dirty = false;
  }
  if (!manager.may_allocate(Clock::now())) return;
  if (auto s = relay->send(copy); !s) {
    relay_failed(s);
    std::lock_guard lock(mu);
    outbox_dirty = true;
  }
}

void ManagerServer::Impl::follow_relayed(Clock::time_point now) {
  auto here = manager.streaming_here(now);
  const auto leader = relay->current_leader();
  {
    // An acknowledgement counts only for a round this replica relayed from the current leader.
    std::lock_guard lock(mu);
    for (auto& [id, node] : here) {
      auto it = relayed.find(id);
      const bool ours = it != relayed.end() && it->second.leader == leader &&
                        std::find(it->second.rounds.begin(), it->second.rounds.end(), node.applied_round) !=
                            it->second.rounds.end();
      if (!ours) node.applied_round = 0;
    }
  }
  const bool none = here.empty();
  if (here != published || (!none && now - published_at >= relay_heartbeat)) {
    const auto s = relay->publish(here);
    relay_failed(s);
    if (s) {
      published = std::move(here);
      published_at = now;
    }
  }
  if (none) return;  // nobody to send anything to
  auto inbox = relay->receive();
  if (!inbox) return relay_failed(inbox.error());
  if (!*inbox) return;
  std::lock_guard lock(mu);
  auto todo = to_relay(**inbox, leader, relay->replica(), relayed);
  for (const auto& [node, alloc] : todo.send)
    if (auto it = streams.find(node); it != streams.end()) it->second->send(to_proto(alloc));
  for (const auto& node : todo.refuse) {
    auto it = streams.find(node);
    if (it == streams.end()) continue;
    NodeStream* stream = it->second;
    streams.erase(it);
    stream->refuse({grpc::StatusCode::ALREADY_EXISTS, "node id " + node + " is already connected to another manager replica"});
  }
}

void ManagerServer::Impl::node_applied(const std::string& node, std::uint64_t round) {
  std::lock_guard lock(mu);
  send_locked(handover.applied(node, round));
}

void ManagerServer::Impl::run_rounds() {
  std::unique_lock lock(mu);
  while (!stopping) {
    wake.wait_for(lock, poll);
    if (stopping) break;
    lock.unlock();
    if (relay) exchange(Clock::now());
    if (auto result = manager.maybe_round(Clock::now())) {
      for (const auto& node : result->expired) spdlog::info("node {}: lease over, its share is redistributed", node);
      if (auto e = manager.take_error()) spdlog::error("manager: {}", e->to_string());
      if (relay) sync_leadership();
      publish(*result);
    }
    if (relay) flush_outbox(Clock::now());
    lock.lock();
  }
}

ManagerServer::ManagerServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<ManagerServer>> ManagerServer::start(Manager& manager, const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(manager, options);
  grpc::ServerBuilder builder;
  if (!options.credentials) return Error{"ebb-manager: no server credentials"};
  builder.AddListeningPort(options.listen, options.credentials, &impl->port);
  builder.RegisterService(impl.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) return Error{"ebb-manager: cannot listen on " + options.listen};
  impl->round_loop = std::thread([p = impl.get()] { p->run_rounds(); });
  return std::unique_ptr<ManagerServer>(new ManagerServer(std::move(impl)));
}

int ManagerServer::port() const { return impl_->port; }

void ManagerServer::shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopping = true;
    impl_->stopped = true;
  }
  impl_->wake.notify_all();
  if (impl_->round_loop.joinable()) impl_->round_loop.join();
  // Streams never end on their own; a deadline makes Shutdown cancel them.
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
}

void ManagerServer::wait() { impl_->server->Wait(); }

ManagerServer::~ManagerServer() { shutdown(); }

}  // namespace ebb::manager
