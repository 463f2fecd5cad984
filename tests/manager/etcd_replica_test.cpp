// Manager replicas without an etcd: the Manager's side of leadership (a scripted Leadership over
// a shared in-memory store), the [etcd] config and the gateway's base64. The election and the
// fenced saves against a real etcd are tested by etcd_failover_test.sh.
#include <catch2/catch.hpp>

#include "manager/config/config.h"
#include "manager/core/manager.h"
#include "manager/etcd/client.h"

using namespace ebb::manager;
using namespace std::chrono_literals;

namespace {

struct ScriptedLeadership : Leadership {
  bool may = false;
  std::optional<std::string> elsewhere = "10.0.0.2:7070";
  bool may_allocate(Clock::time_point) const override { return may; }
  std::optional<std::string> leader_elsewhere() const override { return elsewhere; }
  void lead() {
    may = true;
    elsewhere.reset();
  }
};

// A store whose saves can be made to fail, as a fenced save does once the leader key is gone.
struct SharedStore : StateStorage {
  std::optional<PersistentState> saved;
  bool refuse = false;
  ebb::Result<std::optional<PersistentState>> load() override { return saved; }
  ebb::Status save(const PersistentState& state) override {
    if (refuse) return ebb::Error{"not saved: the leader key is no longer ours"};
    saved = state;
    return ebb::ok_status();
  }
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

TEST_CASE_METHOD(Replicas, "a replica that does not lead refuses writes and nodes, naming the leader") {
  auto refused = b->set_group({"batch", 2, 0, ebb::policy::PriorityClass::best_effort, 0});
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().errno_value == EREMOTE);
  CHECK(refused.error().message.find("10.0.0.2:7070") != std::string::npos);
  CHECK_FALSE(b->set_cluster_cap(4).ok());
  auto node = b->register_node({"n1", 16, 1ull << 30, {}}, now);
  REQUIRE_FALSE(node.ok());
  CHECK(node.error().errno_value == EREMOTE);
}

TEST_CASE_METHOD(Replicas, "only the leader allocates; a follower serves the stored state") {
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
  a_leads.may = false;
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

TEST_CASE_METHOD(Replicas, "a leader that loses its margin stops allocating and sends its nodes on once deposed") {
  const auto session = stream(*a, "n1", 6);
  now += 1s;
  REQUIRE(a->maybe_round(now));
  a_leads.may = false;  // keepalive late: still holds the key, may not allocate
  now += 1s;
  CHECK_FALSE(a->maybe_round(now));
  CHECK(a->report("n1", session, {{"web", 6, 6, 1ull << 30, 1}}, now).ok());  // its stream stays
  a_leads.elsewhere = "10.0.0.2:7070";  // deposed
  auto report = a->report("n1", session, {{"web", 6, 6, 1ull << 30, 1}}, now);
  REQUIRE_FALSE(report.ok());
  CHECK(report.error().errno_value == EREMOTE);
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
