#include "manager/core/manager.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <unistd.h>

using namespace ebb::manager;
using namespace std::chrono_literals;

namespace {

// A manager with two nodes streaming and one group, driven by a fake clock.
struct Cluster {
  MemoryStateStorage storage;
  ManagerOptions options;
  std::unique_ptr<Manager> manager;
  Clock::time_point now{std::chrono::seconds(1000)};
  std::map<std::string, std::uint64_t> sessions;

  Cluster() {
    options.allocation.hysteresis_cpu_cores = 0;
    options.allocation.hysteresis_fraction = 0;
    manager = std::make_unique<Manager>(options, &storage);
    REQUIRE(manager->set_group({"web", 8, 8ull << 30, ebb::policy::PriorityClass::burstable, 0}).ok());
  }
  void connect(const std::string& node) {
    auto session = manager->register_node({node, 16, 32ull << 30, {}}, now);
    REQUIRE(session.ok());
    sessions[node] = *session;
    REQUIRE(manager->open_stream(node, *session, now).ok());
  }
  void report(const std::string& node, double wanted) {
    REQUIRE(manager->report(node, sessions[node], {{"web", wanted, wanted, 1ull << 30, 2}}, now).ok());
  }
  double share(const RoundResult& r, const std::string& node) {
    auto it = r.to_nodes.find(node);
    if (it == r.to_nodes.end() || it->second.groups.empty()) return -1;
    return it->second.groups[0].cpu_cores;
  }
  double stored_share(const std::string& node) {
    for (const auto& n : manager->nodes(now))
      if (n.info.id == node) return n.allocated.empty() ? 0 : n.allocated[0].cpu_cores;
    return -1;  // gone
  }
};

}  // namespace

TEST_CASE_METHOD(Cluster, "a round splits the group's budget by the nodes' demand") {
  connect("a");
  connect("b");
  report("a", 6);
  report("b", 6);
  auto r = manager->round(now);
  CHECK(share(r, "a") == Approx(4));
  CHECK(share(r, "b") == Approx(4));
  CHECK(r.to_nodes["a"].node_cpu_cores == Approx(16));
}

TEST_CASE_METHOD(Cluster, "a disconnected node keeps its share for the lease, then it is redistributed") {
  connect("a");
  connect("b");
  report("a", 6);
  report("b", 6);
  manager->round(now);
  manager->close_stream("b", sessions["b"], now);

  now += 5s;
  report("a", 6);
  auto r = manager->round(now);
  CHECK(r.to_nodes.count("b") == 0);          // not connected: nothing to send
  CHECK(stored_share("b") == Approx(4));      // but its share still counts
  CHECK(share(r, "a") == Approx(4));
  CHECK(r.expired.empty());

  now += 5s;  // 10 s after the disconnect: the lease is over
  report("a", 6);
  r = manager->round(now);
  CHECK(r.expired == std::vector<std::string>{"b"});
  CHECK(stored_share("b") == -1);
  CHECK(share(r, "a") == Approx(8));  // its demand of 6 and the rest of the budget as headroom
}

TEST_CASE_METHOD(Cluster, "a node that goes silent counts as disconnected from its last report") {
  connect("a");
  connect("b");
  report("a", 6);
  report("b", 6);
  manager->round(now);
  now += options.lease + 1s;  // b's stream is open but it never reported again
  report("a", 6);
  auto r = manager->round(now);
  CHECK(r.expired == std::vector<std::string>{"b"});
}

TEST_CASE_METHOD(Cluster, "a duplicate node id is rejected while the first one is connected") {
  connect("a");
  report("a", 1);
  auto dup = manager->register_node({"a", 16, 1ull << 30, {}}, now);
  REQUIRE_FALSE(dup.ok());
  CHECK(dup.error().errno_value == EEXIST);
  // Once it disconnects, the same node may come back (a restart of the node).
  manager->close_stream("a", sessions["a"], now);
  auto again = manager->register_node({"a", 16, 1ull << 30, {}}, now);
  REQUIRE(again.ok());
  // The old session is superseded.
  CHECK_FALSE(manager->report("a", sessions["a"], {}, now).ok());
}

TEST_CASE_METHOD(Cluster, "a large demand shift makes a round due at once, small ones wait") {
  connect("a");
  report("a", 1);
  REQUIRE(manager->maybe_round(now));
  now += 200ms;
  report("a", 1.2);
  CHECK_FALSE(manager->maybe_round(now));
  report("a", 5);
  CHECK(manager->maybe_round(now));
  now += 1s;
  CHECK(manager->maybe_round(now));
}

TEST_CASE("a restarted manager restores groups, the cap and pinned shares from its state file") {
  const auto dir = std::filesystem::temp_directory_path() / ("ebb-manager-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto file = dir / "state.json";
  ManagerOptions options;
  Clock::time_point now{std::chrono::seconds(50)};
  {
    FileStateStorage storage(file);
    Manager m(options, &storage);
    REQUIRE(m.set_group({"db", 4, 1ull << 30, ebb::policy::PriorityClass::guaranteed, 2}).ok());
    REQUIRE(m.set_cluster_cap(10).ok());
    auto s = m.register_node({"n1", 8, 1ull << 30, {{"zone", "a"}}}, now);
    REQUIRE(m.open_stream("n1", *s, now).ok());
    REQUIRE(m.report("n1", *s, {{"db", 3, 3, 1 << 20, 1}}, now).ok());
    m.round(now);
  }
  FileStateStorage storage(file);
  Manager m(options, &storage);
  now += 1h;  // a different clock epoch does not matter: the lease restarts at restore
  REQUIRE(m.restore(now).ok());
  auto g = m.group("db");
  REQUIRE(g);
  CHECK(g->spec.floor_cpu_cores == 2);
  CHECK(m.cluster_cap() == 10);
  auto nodes = m.nodes(now);
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].info.labels.at("zone") == "a");
  CHECK_FALSE(nodes[0].connected);
  REQUIRE(nodes[0].allocated.size() == 1);
  CHECK(nodes[0].allocated[0].cpu_cores == Approx(4));  // demand 3, plus the headroom
  // Its share stays pinned until the lease ends.
  auto r = m.round(now + 5s);
  CHECK(r.expired.empty());
  r = m.round(now + options.lease);
  CHECK(r.expired == std::vector<std::string>{"n1"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("a corrupt state file is an error, not a fresh start") {
  auto state = parse_state_json("{\"version\": 1, \"groups\": 3}", "x.json");
  CHECK_FALSE(state.ok());
  PersistentState s;
  s.groups.push_back({"g", 1, 2, ebb::policy::PriorityClass::best_effort, 0});
  s.nodes["n"] = {"n", 4, 8, {{"k", "v"}}};
  s.allocations["n"] = {{"g", 0.5, 2}};
  s.cluster_cap_cpu_cores = 3;
  s.round = 7;
  auto back = parse_state_json(to_json(s), "y.json");
  REQUIRE(back.ok());
  CHECK(*back == s);
}
