// ManagerService end to end inside one process: a real gRPC server on a loopback port over an
// in-memory state store, real ManagerLinks driving fake nodes, and mutual TLS with certificates
// made by openssl (tests/manager/make_certs.sh).
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <grpcpp/grpcpp.h>

#include "daemon/manager_client/manager_link.h"
#include "manager/service/client.h"
#include "manager/service/server.h"

using namespace ebb;
using namespace ebb::manager;
using namespace ebb::manager_client;
using namespace std::chrono_literals;

namespace {

// A node whose demand the test sets; budgets are recorded as applied. Touched only on the io
// thread (by the link) and read by the test through snapshots taken on that thread.
class FakeNode : public LocalNode {
 public:
  std::map<std::string, ebb::control::Engine::GroupDemand> demand;
  std::map<std::string, double> budgets;
  std::optional<double> node_budget;
  std::map<std::string, ebb::control::Engine::GroupDemand> group_demand() const override { return demand; }
  void set_group_budget(const std::string& g, std::optional<double> cores) override {
    if (cores) budgets[g] = *cores;
    else budgets.erase(g);
  }
  void set_node_budget(std::optional<double> cores) override { node_budget = cores; }
};

// One io thread for every fake node, as ebbd has one for its Engine.
struct IoThread {
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread{[this] { io.run(); }};
  ~IoThread() {
    work.reset();
    io.stop();
    thread.join();
  }
  // Runs fn on the io thread and waits for it.
  template <typename Fn>
  auto on_io(Fn fn) {
    std::promise<decltype(fn())> done;
    boost::asio::post(io, [&] { done.set_value(fn()); });
    return done.get_future().get();
  }
};

template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return pred();
}

ManagerOptions fast_options() {
  ManagerOptions o;
  o.lease = 1500ms;
  o.round_interval = 200ms;
  o.report_interval = 100ms;
  o.silence = 1s;
  o.allocation.hysteresis_cpu_cores = 0;
  o.allocation.hysteresis_fraction = 0;
  return o;
}

ManagerLinkOptions link_options(const std::string& id, int port, Transport transport = {{}, true}) {
  ManagerLinkOptions o;
  o.manager = "127.0.0.1:" + std::to_string(port);
  o.node_id = id;
  o.transport = std::move(transport);
  o.cpu_cores = 8;
  o.memory_bytes = 16ull << 30;
  o.backoff_min = 50ms;
  o.backoff_max = 200ms;
  return o;
}

v1::Group group_msg(const std::string& name, double cpus) {
  v1::Group g;
  g.set_name(name);
  g.set_cpu_cores(cpus);
  g.set_memory_bytes(8ull << 30);
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
  void set_group(const std::string& name, double cpus) {
    grpc::ClientContext ctx;
    v1::SetGroupBudgetRequest req;
    *req.mutable_group() = group_msg(name, cpus);
    v1::Group resp;
    REQUIRE(admin->SetGroupBudget(&ctx, req, &resp).ok());
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

struct Pki {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ebb-manager-pki-" + std::to_string(::getpid()));
  Pki() {
    const std::string cmd = "bash " EBB_MAKE_CERTS " " + dir.string();
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ~Pki() { std::filesystem::remove_all(dir); }
  TlsFiles files(const std::string& name, const std::string& ca = "ca") const {
    return {dir / (name + ".pem"), dir / (name + ".key"), dir / (ca + ".pem")};
  }
};

}  // namespace

TEST_CASE("mutual TLS: nodes and orchestrators need a certificate from the manager's CA") {
  Pki pki;
  MemoryStateStorage storage;
  Manager manager(fast_options(), &storage);
  auto creds = server_credentials(pki.files("manager"));
  REQUIRE(creds.ok());
  auto server = ManagerServer::start(manager, {"127.0.0.1:0", *creds, 10ms});
  REQUIRE(server.ok());
  const std::string target = "localhost:" + std::to_string((*server)->port());

  auto call = [&](const Transport& t) {
    auto stub = connect_manager(target, t);
    REQUIRE(stub.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 3s);
    v1::ListGroupsResponse resp;
    return (*stub)->ListGroups(&ctx, {}, &resp).error_code();
  };
  CHECK(call({pki.files("admin"), false}) == grpc::StatusCode::OK);
  CHECK(call({pki.files("rogue"), false}) == grpc::StatusCode::UNAVAILABLE);  // another CA
  CHECK(call({{}, true}) == grpc::StatusCode::UNAVAILABLE);                    // no TLS at all

  IoThread io;
  FakeNode a;
  REQUIRE(manager.set_group({"web", 4, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
  io.on_io([&] {
    a.demand["web"] = {2, 2, 1 << 20, 1};
    return 0;
  });
  auto options = link_options("a", (*server)->port(), {pki.files("node"), false});
  options.manager = target;
  ManagerLink la(io.io, a, options);
  la.start();
  REQUIRE(eventually([&] { return io.on_io([&] { return a.budgets.count("web") == 1; }); }));
  la.stop();
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
