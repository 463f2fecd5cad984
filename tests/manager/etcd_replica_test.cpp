// Manager replicas without an etcd: the Manager's side of leadership (a scripted Leadership over
// a shared in-memory store), node streams on followers (the Manager's side, the relay formats,
// and two in-process servers relaying through a shared in-memory relay), the [etcd] config and
// the gateway's base64. The election, the fenced saves and the relay against a real etcd are
// tested by etcd_failover_test.sh.
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>

#include "manager/config/config.h"
#include "manager/core/manager.h"
#include "manager/core/relay.h"
#include "manager/etcd/client.h"
#include "manager/service/client.h"
#include "manager/service/server.h"
#include "tests/manager/fake_node.h"

using namespace ebb::manager;
using namespace ebb::manager::testing;
using ebb::manager_client::ManagerLink;
using namespace std::chrono_literals;

namespace {

// Thread-safe: the in-process servers' round loops ask it.
struct ScriptedLeadership : Leadership {
  mutable std::mutex mu;
  bool may = false;
  std::optional<std::string> elsewhere = "10.0.0.2:7070";
  std::uint64_t leader_epoch = 0;
  bool may_allocate(Clock::time_point) const override {
    std::lock_guard lock(mu);
    return may;
  }
  std::optional<std::string> leader_elsewhere() const override {
    std::lock_guard lock(mu);
    return elsewhere;
  }
  std::uint64_t epoch() const override {
    std::lock_guard lock(mu);
    return leader_epoch;
  }
  void lead(std::uint64_t epoch = 1) {
    std::lock_guard lock(mu);
    may = true;
    elsewhere.reset();
    leader_epoch = epoch;
  }
  void follow(const std::string& leader, std::uint64_t epoch) {
    std::lock_guard lock(mu);
    may = false;
    elsewhere = leader;
    leader_epoch = epoch;
  }
  void lose_margin() {
    std::lock_guard lock(mu);
    may = false;
  }
};

// A store whose saves can be made to fail, as a fenced save does once the leader key is gone.
struct SharedStore : StateStorage {
  std::mutex mu;
  std::optional<PersistentState> saved;
  bool refuse = false;
  ebb::Result<std::optional<PersistentState>> load() override {
    std::lock_guard lock(mu);
    return saved;
  }
  ebb::Status save(const PersistentState& state) override {
    std::lock_guard lock(mu);
    if (refuse) return ebb::Error{"not saved: the leader key is no longer ours"};
    saved = state;
    return ebb::ok_status();
  }
};

// What etcd holds for the relay: every replica's published nodes and the leader's outbox.
struct SharedRelayStore {
  std::mutex mu;
  std::map<std::string, RelayedReplica> published;
  std::optional<Outbox> outbox;
  std::int64_t version = 0;
};

// A replica's relay over the shared store; the outbox is stored only while the replica may
// allocate (etcd's txn on the leader key, approximately).
struct MemoryRelay : Relay {
  SharedRelayStore& store;
  const std::string name;
  const ScriptedLeadership& leadership;
  MemoryRelay(SharedRelayStore& s, std::string n, const ScriptedLeadership& l) : store(s), name(std::move(n)), leadership(l) {}
  const std::string& replica() const override { return name; }
  ebb::Status publish(const std::map<std::string, RelayedNode>& nodes) override {
    std::lock_guard lock(store.mu);
    store.published[name] = {name, ++store.version, nodes};
    return ebb::ok_status();
  }
  ebb::Result<std::vector<RelayedReplica>> collect() override {
    std::lock_guard lock(store.mu);
    std::vector<RelayedReplica> out;
    for (const auto& [replica, published] : store.published)
      if (replica != name) out.push_back(published);
    return out;
  }
  ebb::Status send(const Outbox& outbox) override {
    if (!leadership.may_allocate(Clock::now())) return ebb::Error{"not sent: not the leader"};
    std::lock_guard lock(store.mu);
    store.outbox = outbox;
    store.outbox->leader = static_cast<std::int64_t>(leadership.epoch());
    return ebb::ok_status();
  }
  ebb::Result<std::optional<Outbox>> receive() override {
    std::lock_guard lock(store.mu);
    return store.outbox;
  }
  std::int64_t current_leader() const override { return static_cast<std::int64_t>(leadership.epoch()); }
};

struct Replicas {
  SharedStore store;
  ScriptedLeadership a_leads, b_leads;
  ManagerOptions options;
  std::unique_ptr<Manager> a, b;
  Clock::time_point now{std::chrono::seconds(1000)};

  Replicas() {
    options.allocation.hysteresis_cpu_cores = 0;
    options.allocation.hysteresis_fraction = 0;
    a = std::make_unique<Manager>(options, &store, &a_leads);
    b = std::make_unique<Manager>(options, &store, &b_leads);
    a_leads.lead();
    a->maybe_round(now);  // takes over: loads the (empty) store, which writes need first
    REQUIRE(a->set_group({"web", 8, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
  }
  std::uint64_t stream(Manager& m, const std::string& node, double wanted) {
    auto session = m.register_node({node, 16, 32ull << 30, {}}, now);
    REQUIRE(session.ok());
    REQUIRE(m.open_stream(node, *session, now).ok());
    REQUIRE(m.report(node, *session, {{"web", wanted, wanted, 1ull << 30, 1}}, now).ok());
    return *session;
  }
};

double allocated(const Manager& m, const std::string& group) {
  auto g = m.group(group);
  return g ? g->allocated_cpu_cores : -1;
}

}  // namespace

TEST_CASE_METHOD(Replicas, "a replica that does not lead refuses writes, naming the leader, and accepts nodes") {
  auto refused = b->set_group({"batch", 2, 0, ebb::policy::PriorityClass::best_effort, 0});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().errno_value == EREMOTE);
  CHECK(refused.error().message.find("10.0.0.2:7070") != std::string::npos);
  CHECK_FALSE(b->set_cluster_cap(4).ok());
  stream(*b, "n1", 3);
  const auto here = b->streaming_here(now);
  REQUIRE(here.size() == 1);
  CHECK(here.at("n1").info.cpu_cores == 16);
  CHECK(here.at("n1").reported.at(0).wanted_cpu_cores == 3);
  CHECK_FALSE(b->maybe_round(now));  // it still does not allocate

  // A node between Register and Connect survives the follower's reload of the stored state.
  auto n2 = b->register_node({"n2", 16, 1ull << 30, {}}, now);
  REQUIRE(n2.ok());
  now += 1s;
  CHECK_FALSE(b->maybe_round(now));  // reloads the store
  CHECK(b->open_stream("n2", *n2, now).ok());
}

TEST_CASE_METHOD(Replicas, "only the leader allocates, a follower serves the stored state") {
  stream(*a, "n1", 6);
  stream(*a, "n2", 6);
  now += 1s;
  auto round = a->maybe_round(now);
  REQUIRE(round);
  CHECK(round->to_nodes.size() == 2);
  CHECK(allocated(*a, "web") == Approx(8));
  CHECK_FALSE(b->maybe_round(now));  // follows: loads the store, never allocates
  CHECK(allocated(*b, "web") == Approx(8));
  CHECK(b->nodes(now).size() == 2);
}

TEST_CASE_METHOD(Replicas, "a new leader takes over the stored groups and keeps the old allocations leased") {
  stream(*a, "n1", 6);
  now += 1s;
  REQUIRE(a->maybe_round(now));
  // a dies; b wins the election.
  a_leads.lose_margin();
  b_leads.lead();
  now += 3s;
  auto first = b->maybe_round(now);
  REQUIRE(first);
  REQUIRE(b->group("web"));
  CHECK(b->group("web")->spec.cpu_cores == 8);
  CHECK(first->expired.empty());       // n1's lease starts over at the takeover
  CHECK(allocated(*b, "web") == Approx(8));  // n1 keeps the share it may still be using
  CHECK(first->to_nodes.empty());      // n1 has not reconnected yet
  CHECK(b->set_group({"batch", 2, 0, ebb::policy::PriorityClass::best_effort, 0}).ok());
  REQUIRE(store.saved);
  CHECK(store.saved->groups.size() == 2);
}

TEST_CASE_METHOD(Replicas, "an allocation that cannot be stored is not sent, and a budget that cannot be stored is refused") {
  const auto n1 = stream(*a, "n1", 6);
  now += 1s;
  REQUIRE(a->maybe_round(now));
  store.refuse = true;
  const auto n2 = stream(*a, "n2", 6);
  now += 1s;
  CHECK_FALSE(a->maybe_round(now));          // n2's share would shrink n1's: withheld
  CHECK(allocated(*a, "web") == Approx(8));  // n1 keeps the whole budget it was sent
  CHECK(a->take_error());
  CHECK_FALSE(a->set_group({"web", 1, 0, ebb::policy::PriorityClass::burstable, 0}).ok());
  CHECK(a->group("web")->spec.cpu_cores == 8);
  store.refuse = false;
  now += 1s;
  for (auto [node, session] : {std::pair{"n1", n1}, std::pair{"n2", n2}})
    REQUIRE(a->report(node, session, {{"web", 6, 6, 1ull << 30, 1}}, now).ok());
  auto resumed = a->maybe_round(now);
  REQUIRE(resumed);
  CHECK(resumed->to_nodes.size() == 2);
}

TEST_CASE_METHOD(Replicas, "a leader that loses its margin stops allocating and, once deposed, keeps its nodes to relay them") {
  const auto session = stream(*a, "n1", 6);
  now += 1s;
  REQUIRE(a->maybe_round(now));
  a_leads.lose_margin();  // keepalive late: still holds the key, may not allocate
  now += 1s;
  CHECK_FALSE(a->maybe_round(now));
  CHECK(a->report("n1", session, {{"web", 6, 6, 1ull << 30, 1}}, now).ok());  // its stream stays
  a_leads.follow("10.0.0.2:7070", 2);  // deposed
  CHECK_FALSE(a->maybe_round(now));
  CHECK_FALSE(a->leads());
  CHECK(a->report("n1", session, {{"web", 5, 5, 1ull << 30, 1}}, now, 7).ok());
  const auto here = a->streaming_here(now);
  REQUIRE(here.count("n1"));
  CHECK(here.at("n1").applied_round == 7);
  CHECK(here.at("n1").reported.at(0).wanted_cpu_cores == 5);
}

TEST_CASE_METHOD(Replicas, "the leader allocates for a node on a follower as its own, following its demand") {
  stream(*a, "n1", 6);
  const auto n2 = stream(*b, "n2", 2);
  auto update = a->relayed({{"b:1", 1, b->streaming_here(now)}}, now);
  CHECK(update.shift);
  now += 1s;
  auto round = a->maybe_round(now);
  REQUIRE(round);
  REQUIRE(round->to_nodes.count("n2"));
  CHECK(round->to_nodes.at("n2").groups.at(0).cpu_cores == Approx(2));
  CHECK(round->to_nodes.at("n1").groups.at(0).cpu_cores == Approx(6));
  CHECK(round->round >= 1ull << 32);  // numbered past the epoch of the leader
  CHECK(a->relayed_via(now) == std::map<std::string, std::string>{{"n2", "b:1"}});
  for (const auto& v : a->nodes(now))
    if (v.info.id == "n2") CHECK((v.connected && v.via == "b:1"));

  // n2's demand rises on the follower; its acknowledgement of the round comes along.
  REQUIRE(b->report("n2", n2, {{"web", 6, 6, 1ull << 30, 1}}, now, round->round).ok());
  now += 100ms;
  update = a->relayed({{"b:1", 2, b->streaming_here(now)}}, now);
  CHECK(update.shift);
  REQUIRE(update.applied.size() == 1);
  CHECK(update.applied[0] == std::pair<std::string, std::uint64_t>{"n2", round->round});
  now += 100ms;
  round = a->maybe_round(now);
  REQUIRE(round);
  CHECK(round->to_nodes.at("n2").groups.at(0).cpu_cores == Approx(4));
  CHECK(round->to_nodes.at("n1").groups.at(0).cpu_cores == Approx(4));
  // Stored: a successor pins what n2 was given.
  REQUIRE(store.saved);
  CHECK(store.saved->allocations.at("n2").at(0).cpu_cores == Approx(4));
}

TEST_CASE_METHOD(Replicas, "a relayed node held elsewhere stays there, a stalled follower's nodes are leased, then dropped") {
  const auto n1 = stream(*a, "n1", 6);
  std::map<std::string, RelayedNode> published{{"n1", {{"n1", 16, 1ull << 30, {}}, {{"web", 1, 1, 0, 1}}, 0}},
                                               {"n2", {{"n2", 16, 1ull << 30, {}}, {{"web", 2, 2, 0, 1}}, 0}}};
  const auto first = a->relayed({{"b:1", 1, published}}, now);
  CHECK(a->relayed_via(now) == std::map<std::string, std::string>{{"n2", "b:1"}});  // n1 streams here
  CHECK(first.refused == std::map<std::string, std::string>{{"n1", "b:1"}});        // b must end its copy
  auto duplicate = a->register_node({"n2", 16, 1ull << 30, {}}, now);
  REQUIRE_FALSE(duplicate.ok());
  CHECK(duplicate.error().errno_value == EEXIST);
  CHECK(duplicate.error().message.find("through b:1") != std::string::npos);
  now += 1s;
  REQUIRE(a->maybe_round(now));
  CHECK(allocated(*a, "web") == Approx(8));  // n1 6, n2 2

  // The follower publishes nothing new for `silence` (3 s): n2 is disconnected and keeps its
  // share for the lease (10 s from when it was last seen), then it is dropped.
  const auto n1_reports = [&] { REQUIRE(a->report("n1", n1, {{"web", 6, 6, 1ull << 30, 1}}, now).ok()); };
  for (int i = 0; i < 4; ++i) {
    now += 1s;
    n1_reports();
    a->relayed({{"b:1", 1, published}}, now);
  }
  CHECK(a->relayed_via(now).empty());
  auto pinned = a->maybe_round(now);
  REQUIRE(pinned);
  CHECK_FALSE(pinned->to_nodes.count("n2"));
  CHECK(allocated(*a, "web") == Approx(8));
  now += 7s;
  n1_reports();
  auto dropped = a->maybe_round(now);
  REQUIRE(dropped);
  CHECK(dropped->expired == std::vector<std::string>{"n2"});
  // Now n2 may register here.
  CHECK(a->register_node({"n2", 16, 1ull << 30, {}}, now).ok());
}

TEST_CASE("relay formats: published nodes and the outbox round-trip, malformed ones are errors") {
  std::map<std::string, RelayedNode> nodes{
      {"n1", {{"n1", 4, 1ull << 30, {{"rack", "r1"}}}, {{"web", 1.5, 1.25, 1ull << 20, 2}}, 9}}};
  auto parsed = parse_relayed_nodes(to_json(nodes), "k");
  REQUIRE(parsed.ok());
  CHECK(*parsed == nodes);
  Outbox outbox{7, {{"n1", {"b:1", 3, {11, {{"web", 1.5, 1ull << 20}}, 4}}}}, {{"n9", "c:1"}}};
  auto back = parse_outbox(to_json(outbox), "k");
  REQUIRE(back.ok());
  CHECK(back->leader == 7);
  CHECK(back->nodes.at("n1").via == "b:1");
  CHECK(back->nodes.at("n1").seq == 3);
  CHECK(back->nodes.at("n1").allocation == outbox.nodes.at("n1").allocation);
  CHECK(back->refused == outbox.refused);
  CHECK_FALSE(parse_outbox("{", "k").ok());
  CHECK(parse_outbox(R"({"version":1,"nodes":{}})", "etcd key x").error().message.find("etcd key x") == 0);
  CHECK_FALSE(parse_relayed_nodes(R"({"version":2,"nodes":{}})", "k").ok());
}

TEST_CASE("relay: a follower sends only the current leader's messages for its own nodes, each once, in order") {
  std::map<std::string, RelayedSent> sent;
  Outbox outbox{5,
                {{"n1", {"b:1", 1, {10, {{"web", 2, 0}}, 4}}}, {"n2", {"c:1", 2, {10, {{"web", 1, 0}}, 4}}}},
                {{"n3", "b:1"}, {"n4", "c:1"}}};
  CHECK(to_relay(outbox, 4, "b:1", sent).send.empty());  // an earlier leader's outbox
  CHECK(to_relay(outbox, 4, "b:1", sent).refuse.empty());
  CHECK(to_relay(outbox, 0, "b:1", sent).send.empty());  // no leader known
  auto out = to_relay(outbox, 5, "b:1", sent);
  REQUIRE(out.send.size() == 1);  // n2 streams to c:1
  CHECK(out.send.at("n1").round == 10);
  CHECK(out.refuse == std::vector<std::string>{"n3"});
  CHECK(to_relay(outbox, 5, "b:1", sent).send.empty());  // already sent
  outbox.nodes.at("n1").seq = 4;  // a release of the same round
  outbox.nodes.at("n1").allocation.groups[0].cpu_cores = 3;
  CHECK(to_relay(outbox, 5, "b:1", sent).send.at("n1").groups[0].cpu_cores == 3);
  CHECK(sent.at("n1").rounds == std::vector<std::uint64_t>{10});
  // A new leader starts its own sequence.
  Outbox next{6, {{"n1", {"b:1", 1, {(6ull << 32) + 1, {{"web", 2, 0}}, 4}}}}, {}};
  CHECK(to_relay(next, 6, "b:1", sent).send.size() == 1);
  CHECK(sent.at("n1").rounds == std::vector<std::uint64_t>{(6ull << 32) + 1});
}

namespace {

// Two replicas, each a Manager behind a real gRPC server, over one store and one relay: nodes
// are real ManagerLinks, one on each replica. With `tls`, the follower b serves mutual TLS
// (test PKI) and n2 presents its own certificate.
struct ServedReplicas {
  std::optional<Pki> pki;
  SharedStore store;
  SharedRelayStore relays;
  ScriptedLeadership a_leads, b_leads;
  MemoryRelay a_relay{relays, "a", a_leads}, b_relay{relays, "b", b_leads};
  Manager a{fast_options(), &store, &a_leads}, b{fast_options(), &store, &b_leads};
  std::unique_ptr<ManagerServer> a_server, b_server;
  IoThread io;
  FakeNode n1, n2;
  std::atomic<bool> sampling{true};
  std::atomic<double> largest_sum{0};
  std::mutex largest_mu;
  std::string largest_at;  // "n1 + n2 (rounds)" at the largest sum
  std::unique_ptr<ManagerLink> l1, l2;
  std::thread sampler;

  explicit ServedReplicas(bool tls = false) {
    if (tls) pki.emplace("n1 n2");
    a_leads.lead(1);
    b_leads.follow("a", 1);
    a_server = serve(a, a_relay, grpc::InsecureServerCredentials());
    b_server = serve(b, b_relay, tls ? server_credentials(pki->files("manager")).value() : grpc::InsecureServerCredentials());
    REQUIRE(eventually([&] { return a.leads(); }));
    REQUIRE(a.set_group({"web", 8, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
    want(n1, 6);
    want(n2, 2);
    l1 = std::make_unique<ManagerLink>(io.io, n1, link_options("n1", a_server->port()));
    auto to_b = link_options("n2", b_server->port());
    if (tls) {
      to_b.transport = {pki->files("n2"), false};
      to_b.manager = b_target();  // the manager certificate names localhost
    }
    l2 = std::make_unique<ManagerLink>(io.io, n2, to_b);
    l1->start();
    l2->start();
    // What the two nodes hold at every instant the sampler sees.
    sampler = std::thread([this] {
      while (sampling) {
        const auto s1 = l1->status(), s2 = l2->status();
        const double w1 = s1.group_budgets.count("web") ? s1.group_budgets.at("web") : 0;
        const double w2 = s2.group_budgets.count("web") ? s2.group_budgets.at("web") : 0;
        if (w1 + w2 > largest_sum) {
          largest_sum = w1 + w2;
          std::lock_guard lock(largest_mu);
          largest_at = std::to_string(w1) + " + " + std::to_string(w2) + " (rounds " + std::to_string(s1.round) + ", " +
                       std::to_string(s2.round) + ")";
        }
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~ServedReplicas() {
    sampling = false;
    sampler.join();
    l1->stop();
    l2->stop();
  }
  std::string b_target() const { return "localhost:" + std::to_string(b_server->port()); }
  static std::unique_ptr<ManagerServer> serve(Manager& m, Relay& relay, std::shared_ptr<grpc::ServerCredentials> credentials) {
    ServerOptions o{"127.0.0.1:0", std::move(credentials), 10ms};
    o.relay = &relay;
    o.relay_interval = 20ms;
    o.relay_heartbeat = 100ms;
    auto s = ManagerServer::start(m, o);
    REQUIRE(s.ok());
    return std::move(*s);
  }
  void want(FakeNode& node, double cores) {
    io.on_io([&] {
      node.demand["web"] = {cores, cores, 1ull << 30, 1};
      return 0;
    });
  }
  static double web(const ManagerLink& link) {
    const auto s = link.status();
    auto it = s.group_budgets.find("web");
    return it == s.group_budgets.end() ? 0 : it->second;
  }
  bool holding(double n1_cores, double n2_cores) const {
    return std::abs(web(*l1) - n1_cores) < 1e-6 && std::abs(web(*l2) - n2_cores) < 1e-6;
  }
  // The sums count from here on: while the nodes join, each one's first allocation goes out as
  // it is (the hand-over is shrink-first from a node's second allocation on, docs/manager.md).
  void steady() {
    REQUIRE(eventually([&] { return holding(6, 2); }));
    largest_sum = 0;
  }
};

}  // namespace

TEST_CASE_METHOD(ServedReplicas, "in process: a node on a follower streams there and gets the leader's allocations, following its demand") {
  steady();
  CHECK(l2->status().connected);
  want(n2, 6);
  REQUIRE(eventually([&] { return holding(4, 4); }));
  want(n2, 1);
  REQUIRE(eventually([&] { return holding(6.5, 1.5); }));  // 1 core of headroom, split
  CHECK(l2->status().reconnects == 0);
  INFO(largest_at);
  CHECK(largest_sum <= 8 + 1e-9);
  bool relayed = false;
  for (const auto& v : a.nodes(Clock::now())) relayed = relayed || (v.info.id == "n2" && v.connected && v.via == "b");
  CHECK(relayed);
}

TEST_CASE_METHOD(ServedReplicas, "in process: a node id connected to the leader is refused on a follower") {
  steady();
  FakeNode copy;
  ManagerLink duplicate(io.io, copy, link_options("n1", b_server->port()));
  duplicate.start();
  REQUIRE(eventually([&] {
    return duplicate.status().last_error.find("already connected to another manager replica") != std::string::npos;
  }));
  CHECK(duplicate.status().group_budgets.empty());
  CHECK(holding(6, 2));
  CHECK(l1->status().reconnects == 0);
  duplicate.stop();
  INFO(largest_at);
  CHECK(largest_sum <= 8 + 1e-9);
}

namespace {

struct TlsServedReplicas : ServedReplicas {
  TlsServedReplicas() : ServedReplicas(true) {}
};

}  // namespace

TEST_CASE_METHOD(TlsServedReplicas, "in process: a follower serving mutual TLS binds node ids to certificates and relays the node its certificate names") {
  steady();  // n2, with its own certificate, gets the leader's allocation through b
  auto register_as = [&](const std::string& cert, const std::string& node_id) {
    auto stub = connect_manager(b_target(), {pki->files(cert), false}).value();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    ebb::v1::RegisterRequest req;
    req.set_node_id(node_id);
    req.set_cpu_cores(4);
    ebb::v1::RegisterResponse resp;
    return stub->Register(&ctx, req, &resp);
  };
  const auto impostor = register_as("n2", "n1");
  CHECK(impostor.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(impostor.error_message(), Catch::Contains("not a name in the client certificate"));
  CHECK(register_as("admin", "n3").error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(b.streaming_here(Clock::now()).size() == 1);  // only n2 is relayed
  want(n2, 6);
  REQUIRE(eventually([&] { return holding(4, 4); }));
  CHECK(largest_sum <= 8 + 1e-9);
}

TEST_CASE_METHOD(ServedReplicas, "in process: on a change of leader no node reconnects, and both follow the new leader's rounds") {
  steady();
  want(n2, 6);
  REQUIRE(eventually([&] { return holding(4, 4); }));
  const auto reconnects = l1->status().reconnects + l2->status().reconnects;
  // a is deposed (it keeps n1 and relays it); b leads with a new epoch.
  a_leads.follow("b", 2);
  b_leads.lead(2);
  REQUIRE(eventually([&] { return b.leads() && !a.leads(); }));
  want(n1, 2);
  REQUIRE(eventually([&] { return holding(2, 6); }));
  CHECK(l1->status().round > 2ull << 32);  // b's rounds, through a
  CHECK(l2->status().round > 2ull << 32);
  CHECK(l1->status().reconnects + l2->status().reconnects == reconnects);
  INFO(largest_at);
  CHECK(largest_sum <= 8 + 1e-9);
}


TEST_CASE("manager config: [etcd] replicas") {
  auto c = parse_manager_config(R"(
[manager]
listen = "127.0.0.1:7070"
plaintext_loopback = true
[etcd]
endpoints = ["127.0.0.1:2379", "127.0.0.1:22379"]
prefix = "/ebb/test/"
lease_ttl = "2s"
safety_fraction = 0.4
)",
                                "m.toml");
  REQUIRE(c.ok());
  REQUIRE(c->etcd);
  CHECK(c->etcd->endpoints.size() == 2);
  CHECK(c->etcd->prefix == "/ebb/test/");
  CHECK(c->etcd->lease_ttl == 2s);
  CHECK(c->etcd->safety_fraction == 0.4);
  CHECK(c->etcd->advertise.empty());

  const char* base = "[manager]\nplaintext_loopback = true\n";
  auto fractional = parse_manager_config(std::string(base) + "[etcd]\nlease_ttl = \"1500ms\"\n", "m.toml");
  REQUIRE_FALSE(fractional.ok());
  CHECK(fractional.error().message.find("m.toml:4: lease_ttl must be whole seconds") != std::string::npos);
  auto both = parse_manager_config(std::string(base) + "state_file = \"s.json\"\n[etcd]\n", "m.toml");
  REQUIRE_FALSE(both.ok());
  CHECK(both.error().message.find("both set") != std::string::npos);
  CHECK_FALSE(parse_manager_config(std::string(base) + "[etcd]\nendpoints = []\n", "m.toml").ok());
  CHECK_FALSE(parse_manager_config(std::string(base) + "[etcd]\nendpoint = \"x\"\n", "m.toml").ok());
  CHECK_FALSE(parse_manager_config(std::string(base) + "[etcd]\nsafety_fraction = 0\n", "m.toml").ok());
}

TEST_CASE("etcd gateway base64: every padding length, and bad input") {
  using ebb::manager::etcd::base64_decode;
  using ebb::manager::etcd::base64_encode;
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("/ebb/manager/leader") == "L2ViYi9tYW5hZ2VyL2xlYWRlcg==");
  for (const std::string s : {"", "f", "fo", "foo", "foob", "\xff\x7f"}) CHECK(*base64_decode(base64_encode(s)) == s);
  CHECK_FALSE(base64_decode("Zm9v!").ok());
}
