// ManagerService end to end inside one process: a real gRPC server on a loopback port over an
// in-memory state store, real ManagerLinks driving fake nodes, and mutual TLS with certificates
// made by openssl (tests/manager/make_certs.sh).
#include <atomic>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include "daemon/manager_client/manager_link.h"
#include "manager/service/client.h"
#include "manager/service/handover.h"
#include "manager/service/server.h"
#include "tests/manager/fake_node.h"

using namespace ebb;
using namespace ebb::manager;
using namespace ebb::manager_client;
using namespace ebb::manager::testing;
using namespace std::chrono_literals;

namespace {

v1::Group group_msg(const std::string& name, double cpus, std::uint64_t memory = 8ull << 30) {
  v1::Group g;
  g.set_name(name);
  g.set_cpu_cores(cpus);
  g.set_memory_bytes(memory);
  return g;
}

struct Fixture {
  MemoryStateStorage storage;
  Manager manager{fast_options(), &storage};
  std::unique_ptr<ManagerServer> server;
  std::unique_ptr<v1::ManagerService::Stub> admin;
  IoThread io;

  explicit Fixture(const std::string& listen = "127.0.0.1:0") {
    auto s = ManagerServer::start(manager, {listen, grpc::InsecureServerCredentials(), 10ms});
    REQUIRE(s.ok());
    server = std::move(*s);
    admin = connect_manager("127.0.0.1:" + std::to_string(server->port()), {{}, true}).value();
  }
  void set_group(const std::string& name, double cpus, std::uint64_t memory = 8ull << 30) {
    grpc::ClientContext ctx;
    v1::SetGroupBudgetRequest req;
    *req.mutable_group() = group_msg(name, cpus, memory);
    v1::Group resp;
    REQUIRE(admin->SetGroupBudget(&ctx, req, &resp).ok());
  }
  // nullopt: no budget for the group at all; a nullopt inside: a budget without memory.
  std::optional<std::optional<std::uint64_t>> memory_budget(FakeNode& node, const std::string& group) {
    return io.on_io([&]() -> std::optional<std::optional<std::uint64_t>> {
      auto it = node.memory_budgets.find(group);
      return it == node.memory_budgets.end() ? std::nullopt : std::optional(it->second);
    });
  }
  std::optional<double> budget(FakeNode& node, const std::string& group) {
    return io.on_io([&]() -> std::optional<double> {
      auto it = node.budgets.find(group);
      return it == node.budgets.end() ? std::nullopt : std::optional<double>(it->second);
    });
  }
  void want(FakeNode& node, const std::string& group, double cores) {
    io.on_io([&] {
      node.demand[group] = {cores, cores, 1ull << 30, 1};
      return 0;
    });
  }
};

}  // namespace

TEST_CASE("nodes register, stream demand and get their share of a group's budget") {
  Fixture f;
  f.set_group("web", 6);
  FakeNode a, b;
  f.want(a, "web", 5);
  f.want(b, "web", 1);
  ManagerLink la(f.io.io, a, link_options("a", f.server->port()));
  ManagerLink lb(f.io.io, b, link_options("b", f.server->port()));
  la.start();
  lb.start();
  REQUIRE(eventually([&] { return f.budget(a, "web") && f.budget(b, "web"); }));
  REQUIRE(eventually([&] { return f.budget(a, "web").value_or(0) == Approx(5); }));
  CHECK(f.budget(b, "web").value_or(0) == Approx(1));
  CHECK(f.io.on_io([&] { return a.node_budget; }) == 8);
  // Memory: 1 GiB wanted on each node, the rest of the 8 GiB spread as headroom.
  const auto memory_a = f.memory_budget(a, "web"), memory_b = f.memory_budget(b, "web");
  REQUIRE(memory_a);
  REQUIRE(memory_b);
  REQUIRE(*memory_a);
  REQUIRE(*memory_b);
  CHECK(**memory_a >= 1ull << 30);
  CHECK(**memory_b >= 1ull << 30);
  CHECK(**memory_a + **memory_b <= 8ull << 30);
  CHECK(la.status().group_memory_budgets.at("web") == **memory_a);
  CHECK(la.status().connected);
  CHECK_FALSE(la.status().local_only);

  // Demand moves from a to b: the allocation follows; the 0.5 cores nobody wants are split
  // as headroom.
  f.want(a, "web", 0.5);
  f.want(b, "web", 5);
  REQUIRE(eventually([&] { return f.budget(b, "web").value_or(0) == Approx(5.25); }, 2s));
  CHECK(f.budget(a, "web").value_or(0) == Approx(0.75));

  grpc::ClientContext ctx;
  v1::ListNodesResponse nodes;
  REQUIRE(f.admin->ListNodes(&ctx, {}, &nodes).ok());
  CHECK(nodes.nodes_size() == 2);
  grpc::ClientContext ctx2;
  v1::GetGroupRequest get;
  get.set_name("web");
  v1::Group g;
  REQUIRE(f.admin->GetGroup(&ctx2, get, &g).ok());
  CHECK(g.allocated_cpu_cores() <= 6 + 1e-9);
  grpc::ClientContext ctx3;
  get.set_name("nope");
  CHECK(f.admin->GetGroup(&ctx3, get, &g).error_code() == grpc::StatusCode::NOT_FOUND);
  la.stop();
  lb.stop();
}

TEST_CASE("a group without a memory budget caps its nodes' CPU only") {
  Fixture f;
  f.set_group("batch", 2, 0);
  FakeNode a;
  f.want(a, "batch", 3);
  ManagerLink la(f.io.io, a, link_options("a", f.server->port()));
  la.start();
  REQUIRE(eventually([&] { return f.budget(a, "batch").value_or(0) == Approx(2); }));
  const auto memory = f.memory_budget(a, "batch");
  REQUIRE(memory);
  CHECK_FALSE(*memory);
  CHECK(la.status().group_memory_budgets.empty());
  la.stop();
}

TEST_CASE("a duplicate node id is rejected over gRPC") {
  Fixture f;
  FakeNode a;
  ManagerLink la(f.io.io, a, link_options("a", f.server->port()));
  la.start();
  REQUIRE(eventually([&] { return la.status().connected; }));
  REQUIRE(eventually([&] { return !f.manager.nodes(Clock::now()).empty() && f.manager.nodes(Clock::now())[0].connected; }));
  grpc::ClientContext ctx;
  v1::RegisterRequest req;
  req.set_node_id("a");
  req.set_cpu_cores(4);
  v1::RegisterResponse resp;
  CHECK(f.admin->Register(&ctx, req, &resp).error_code() == grpc::StatusCode::ALREADY_EXISTS);
  la.stop();
}

TEST_CASE("WatchAllocations streams every round with the groups' totals") {
  Fixture f;
  f.set_group("db", 2);
  FakeNode a;
  f.want(a, "db", 3);
  ManagerLink la(f.io.io, a, link_options("a", f.server->port()));
  la.start();
  grpc::ClientContext ctx;
  auto reader = f.admin->WatchAllocations(&ctx, {});
  v1::AllocationRound round;
  bool seen = false;
  for (int i = 0; i < 50 && reader->Read(&round); ++i) {
    if (round.nodes_size() == 1 && round.nodes(0).allocated_size() == 1) {
      CHECK(round.groups(0).allocated_cpu_cores() == Approx(2));
      seen = true;
      break;
    }
  }
  CHECK(seen);
  ctx.TryCancel();
  (void)reader->Finish();
  la.stop();
}

TEST_CASE("a node that loses the manager keeps its allocation for the lease, then goes local, then reconnects") {
  auto f = std::make_unique<Fixture>();
  const int port = f->server->port();
  f->set_group("web", 4);
  FakeNode a;
  f->want(a, "web", 3);
  IoThread io;  // outlives the fixture, as ebbd outlives a manager
  ManagerLink la(io.io, a, link_options("a", port));
  la.start();
  auto budget = [&] {
    return io.on_io([&] { return a.budgets.count("web") ? std::optional<double>(a.budgets["web"]) : std::nullopt; });
  };
  REQUIRE(eventually([&] { return budget().has_value(); }));
  const auto before = *budget();

  f->server->shutdown();
  const auto lost = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return !la.status().connected; }, 2s));
  // Within the lease (1.5 s, announced at registration) the allocation stays in force.
  std::this_thread::sleep_for(500ms);
  CHECK(budget() == before);
  REQUIRE(eventually([&] { return !budget().has_value(); }, 3s));
  // The lease runs from the last allocation, which came at most one round (200 ms) before.
  CHECK(std::chrono::steady_clock::now() - lost >= 1250ms);
  CHECK(la.status().local_only);
  CHECK(io.on_io([&] { return a.node_budget; }) == std::nullopt);

  // A manager back on the same port: the link reconnects on its own.
  f.reset();
  MemoryStateStorage storage;
  Manager manager(fast_options(), &storage);
  REQUIRE(manager.set_group({"web", 4, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
  auto server = ManagerServer::start(manager, {"127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(), 10ms});
  REQUIRE(server.ok());
  REQUIRE(eventually([&] { return budget().has_value(); }, 5s));
  CHECK(la.status().reconnects >= 1);
  la.stop();
}

namespace {

// A manager serving mutual TLS with the test PKI on a loopback port.
struct TlsServer {
  Pki pki;
  MemoryStateStorage storage;
  Manager manager{fast_options(), &storage};
  std::unique_ptr<ManagerServer> server;
  std::string target;
  TlsServer() {
    auto creds = server_credentials(pki.files("manager"));
    REQUIRE(creds.ok());
    auto started = ManagerServer::start(manager, {"127.0.0.1:0", *creds, 10ms});
    REQUIRE(started.ok());
    server = std::move(*started);
    target = "localhost:" + std::to_string(server->port());
  }
};

}  // namespace

TEST_CASE("mutual TLS: nodes and orchestrators need a certificate from the manager's CA") {
  TlsServer tls;

  auto call = [&](const Transport& t) {
    auto stub = connect_manager(tls.target, t);
    REQUIRE(stub.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    v1::ListGroupsResponse resp;
    return (*stub)->ListGroups(&ctx, {}, &resp).error_code();
  };
  CHECK(call({tls.pki.files("admin"), false}) == grpc::StatusCode::OK);
  CHECK(call({tls.pki.files("rogue"), false}) == grpc::StatusCode::UNAVAILABLE);  // another CA
  CHECK(call({{}, true}) == grpc::StatusCode::UNAVAILABLE);                    // no TLS at all
  {  // TLS that trusts the manager but presents no client certificate
    grpc::SslCredentialsOptions no_client_cert;
    std::ifstream ca(tls.pki.dir / "ca.pem");
    no_client_cert.pem_root_certs.assign(std::istreambuf_iterator<char>(ca), {});
    auto stub = v1::ManagerService::NewStub(grpc::CreateChannel(tls.target, grpc::SslCredentials(no_client_cert)));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    v1::ListGroupsResponse resp;
    CHECK(stub->ListGroups(&ctx, {}, &resp).error_code() == grpc::StatusCode::UNAVAILABLE);
  }

  IoThread io;
  FakeNode a;
  REQUIRE(tls.manager.set_group({"web", 4, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
  io.on_io([&] {
    a.demand["web"] = {2, 2, 1 << 20, 1};
    return 0;
  });
  auto options = link_options("a", tls.server->port(), {tls.pki.files("a"), false});
  options.manager = tls.target;
  ManagerLink la(io.io, a, options);
  la.start();
  REQUIRE(eventually([&] { return io.on_io([&] { return a.budgets.count("web") == 1; }); }));
  la.stop();
}

TEST_CASE("mutual TLS: a node id must be named by the node's certificate") {
  TlsServer tls;
  auto stub_as = [&](const std::string& cert) { return connect_manager(tls.target, {tls.pki.files(cert), false}).value(); };
  auto register_as = [&](const std::string& cert, const std::string& node_id, v1::RegisterResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    v1::RegisterRequest req;
    req.set_node_id(node_id);
    req.set_cpu_cores(4);
    return stub_as(cert)->Register(&ctx, req, resp);
  };

  v1::RegisterResponse resp;
  CHECK(register_as("a", "a", &resp).ok());        // SAN DNS:a (and CN a)
  CHECK(register_as("node", "node", &resp).ok());  // CN only
  const auto impostor = register_as("a", "b", &resp);
  CHECK(impostor.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK_THAT(impostor.error_message(), Catch::Contains("not a name in the client certificate"));
  CHECK_THAT(impostor.error_message(), Catch::Contains("CN and SANs: a"));
  CHECK(register_as("admin", "b", &resp).error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // b registers for real; a's certificate cannot take over b's stream with b's session.
  REQUIRE(register_as("b", "b", &resp).ok());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 3s);
  auto stub = stub_as("a");
  auto stream = stub->Connect(&ctx);
  v1::NodeReport hello;
  hello.set_node_id("b");
  hello.set_session(resp.session());
  stream->Write(hello);
  stream->WritesDone();
  v1::NodeAllocation ignored;
  while (stream->Read(&ignored)) {
  }
  CHECK(stream->Finish().error_code() == grpc::StatusCode::PERMISSION_DENIED);

  // A ManagerLink with the wrong certificate never registers and says why.
  IoThread io;
  FakeNode b;
  auto options = link_options("b", tls.server->port(), {tls.pki.files("a"), false});
  options.manager = tls.target;
  ManagerLink lb(io.io, b, options);
  lb.start();
  REQUIRE(eventually([&] { return lb.status().reconnects >= 1; }));
  CHECK_THAT(lb.status().last_error, Catch::Contains("not a name in the client certificate"));
  CHECK_FALSE(lb.status().connected);
  lb.stop();
}

TEST_CASE("plaintext is refused off loopback and must not be mixed with TLS files") {
  CHECK(is_loopback_address("127.0.0.1:7070"));
  CHECK(is_loopback_address("[::1]:7070"));
  CHECK(is_loopback_address("localhost:1"));
  CHECK_FALSE(is_loopback_address("0.0.0.0:7070"));
  CHECK_FALSE(is_loopback_address("10.0.0.1:7070"));
  CHECK_FALSE(server_credentials_for("0.0.0.0:7070", {{}, true}).ok());
  CHECK(server_credentials_for("127.0.0.1:7070", {{}, true}).ok());
  CHECK_FALSE(channel_credentials_for("10.0.0.1:7070", {{}, true}).ok());
  CHECK_FALSE(channel_credentials_for("127.0.0.1:7070", {{"a", "b", "c"}, true}).ok());
  CHECK_FALSE(server_credentials_for("127.0.0.1:7070", {{}, false}).ok());  // TLS without files
}

namespace {

NodeAllocation web_share(std::uint64_t round, double cpu, std::uint64_t memory) {
  return {round, {{"web", cpu, memory}}, 8};
}

}  // namespace

TEST_CASE("shrink-first hand-over: an increase waits until the node that decreases has applied") {
  HandOver h;
  // Round 1: both nodes are new to this manager; they get their targets as they are.
  auto out = h.plan({{"a", web_share(1, 4, 4 << 20)}, {"c", web_share(1, 1, 1 << 20)}});
  CHECK(out.at("a").groups == web_share(1, 4, 4 << 20).groups);
  CHECK(out.at("c").groups == web_share(1, 1, 1 << 20).groups);
  CHECK(h.applied("a", 1).empty());
  CHECK(h.applied("c", 1).empty());

  // Round 2 moves 3 cores and 3 MiB from a to c: a's decrease goes out, c's increase is held.
  out = h.plan({{"a", web_share(2, 1, 1 << 20)}, {"c", web_share(2, 4, 4 << 20)}});
  CHECK(out.at("a").groups == web_share(2, 1, 1 << 20).groups);
  CHECK(out.at("c").groups == web_share(2, 1, 1 << 20).groups);
  CHECK(h.held() == std::set<std::string>{"c"});
  CHECK(h.applied("c", 2).empty());  // c applying its held share releases nothing
  CHECK(h.applied("a", 7).empty());  // a round never sent to a is no acknowledgement
  auto released = h.applied("a", 2);
  REQUIRE(released.count("c"));
  CHECK(released.at("c").groups == web_share(2, 4, 4 << 20).groups);
  CHECK(released.at("c").round == 2);
  CHECK(h.held().empty());

  // Without a decrease elsewhere an increase goes out at once.
  out = h.plan({{"a", web_share(3, 1, 1 << 20)}, {"c", web_share(3, 4.5, 4 << 20)}});
  CHECK(out.at("c").groups == web_share(3, 4.5, 4 << 20).groups);
}

TEST_CASE("shrink-first hand-over: a newcomer holds its group's increases until it acknowledges and a node that left holds them until it is forgotten") {
  HandOver h;
  h.plan({{"a", web_share(1, 2, 0)}});
  h.applied("a", 1);
  // b is new: it may run anything until it acknowledges, so a's increase waits.
  auto out = h.plan({{"a", web_share(2, 3, 0)}, {"b", web_share(2, 1, 0)}});
  CHECK(out.at("a").groups.at(0).cpu_cores == 2);
  CHECK(out.at("b").groups.at(0).cpu_cores == 1);
  auto released = h.applied("b", 2);
  REQUIRE(released.count("a"));
  CHECK(released.at("a").groups.at(0).cpu_cores == 3);

  // b is to give 1 core to a but disconnects before acknowledging: a waits until b is forgotten.
  h.applied("a", 2);
  out = h.plan({{"a", web_share(3, 4, 0)}, {"b", web_share(3, 0, 0)}});
  CHECK(out.at("a").groups.at(0).cpu_cores == 3);
  released = h.forget("b");
  REQUIRE(released.count("a"));
  CHECK(released.at("a").groups.at(0).cpu_cores == 4);
}

TEST_CASE("shrink-first hand-over: a newcomer's first message waits while a node of its group has a decrease to acknowledge") {
  HandOver h;
  h.plan({{"a", web_share(1, 4, 0)}, {"b", web_share(1, 2, 0)}});
  h.applied("a", 1);
  h.applied("b", 1);
  // c joins (it ran without a budget until now) as a gives a core up.
  auto out = h.plan({{"a", web_share(2, 3, 0)}, {"b", web_share(2, 2, 0)}, {"c", web_share(2, 1, 0)}});
  CHECK(out.at("a").groups.at(0).cpu_cores == 3);
  CHECK_FALSE(out.count("c"));
  CHECK(h.held().count("c"));
  CHECK(h.applied("b", 2).empty());  // b decreased nothing
  auto released = h.applied("a", 2);
  REQUIRE(released.count("c"));
  CHECK(released.at("c").groups.at(0).cpu_cores == 1);
  CHECK(released.at("c").round == 2);
  CHECK(h.held().empty());
  // A newcomer in a settled cluster goes out at once.
  h.applied("c", 2);
  out = h.plan({{"a", web_share(3, 3, 0)}, {"b", web_share(3, 2, 0)}, {"c", web_share(3, 1, 0)}, {"d", web_share(3, 1, 0)}});
  CHECK(out.at("d").groups.at(0).cpu_cores == 1);
}

TEST_CASE("shrink-first hand-over: the limits in force never sum above the budget, whatever the order of applying") {
  // Four nodes of one group with a budget of 10 cores; each round a random split. Messages reach
  // each node in order but after random delays; after every step the values the nodes have in
  // force must fit the budget, and once everything is delivered every node has its target.
  std::mt19937 rng(7);
  constexpr double budget = 10;
  const std::vector<std::string> names{"n0", "n1", "n2", "n3"};
  HandOver h;
  std::map<std::string, std::deque<NodeAllocation>> inbox;
  std::map<std::string, double> in_force;
  std::map<std::string, double> target;
  auto deliver = [&](const HandOver::Messages& messages) {
    for (const auto& [node, msg] : messages) inbox[node].push_back(msg);
  };
  auto apply_one = [&](const std::string& node) {
    const NodeAllocation msg = inbox[node].front();
    inbox[node].pop_front();
    in_force[node] = msg.groups.empty() ? 0 : msg.groups.front().cpu_cores;
    double sum = 0;
    for (const auto& [n, v] : in_force) sum += v;
    REQUIRE(sum <= budget + 1e-9);
    deliver(h.applied(node, msg.round));
  };
  for (std::uint64_t round = 1; round <= 300; ++round) {
    std::vector<double> cut{0, budget};
    for (int i = 0; i < 3; ++i) cut.push_back(std::uniform_real_distribution<double>(0, budget)(rng));
    std::sort(cut.begin(), cut.end());
    HandOver::Messages targets;
    for (std::size_t i = 0; i < names.size(); ++i) {
      target[names[i]] = cut[i + 1] - cut[i];
      targets[names[i]] = web_share(round, target[names[i]], 0);
    }
    deliver(h.plan(targets));
    // Apply a random number of pending messages, on random nodes, before the next round.
    for (int steps = std::uniform_int_distribution<int>(0, 6)(rng); steps > 0; --steps) {
      std::vector<std::string> waiting;
      for (const auto& [node, q] : inbox)
        if (!q.empty()) waiting.push_back(node);
      if (waiting.empty()) break;
      apply_one(waiting[std::uniform_int_distribution<std::size_t>(0, waiting.size() - 1)(rng)]);
    }
  }
  // Drain: every node ends on its last target, nothing is held.
  for (bool any = true; any;) {
    any = false;
    for (const auto& node : names)
      if (!inbox[node].empty()) {
        apply_one(node);
        any = true;
      }
  }
  CHECK(h.held().empty());
  for (const auto& node : names) CHECK(in_force[node] == Approx(target[node]));
}
