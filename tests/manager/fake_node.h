#pragma once
// Test support shared by the manager's in-process service tests: a fake node behind a real
// ManagerLink, the io thread it runs on, and a bounded wait.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "daemon/manager_client/manager_link.h"
#include "manager/core/manager.h"
#include "manager/tls/tls.h"

namespace ebb::manager::testing {

// A node whose demand the test sets; budgets are recorded as applied. Touched only on the io
// thread (by the link) and read by the test through snapshots taken on that thread.
class FakeNode : public manager_client::LocalNode {
 public:
  std::map<std::string, ebb::control::Engine::GroupDemand> demand;
  std::map<std::string, double> budgets;
  std::map<std::string, std::optional<std::uint64_t>> memory_budgets;
  std::optional<double> node_budget;
  std::map<std::string, ebb::control::Engine::GroupDemand> group_demand() const override { return demand; }
  void set_group_budget(const std::string& g, std::optional<ebb::control::Engine::GroupBudget> budget) override {
    if (budget && budget->cpu_cores) budgets[g] = *budget->cpu_cores;
    else budgets.erase(g);
    if (budget) memory_budgets[g] = budget->memory_bytes;
    else memory_budgets.erase(g);
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
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

#ifdef EBB_MAKE_CERTS
// A test PKI made by tests/manager/make_certs.sh in a temp dir: "ca", "manager" (localhost,
// 127.0.0.1), "node" (CN only), "admin", and one client certificate per node name.
struct Pki {
  std::filesystem::path dir;
  explicit Pki(const std::string& nodes = "a b") {
    static int made = 0;
    dir = std::filesystem::temp_directory_path() /
          ("ebb-manager-pki-" + std::to_string(::getpid()) + "-" + std::to_string(made++));
    const std::string cmd = "bash " EBB_MAKE_CERTS " " + dir.string() + " --nodes " + nodes + " >/dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  ~Pki() { std::filesystem::remove_all(dir); }
  manager::TlsFiles files(const std::string& name, const std::string& ca = "ca") const {
    return {dir / (name + ".pem"), dir / (name + ".key"), dir / (ca + ".pem")};
  }
};
#endif

// Short leases and intervals, no hysteresis: tests see every change at once.
inline ManagerOptions fast_options() {
  ManagerOptions o;
  o.lease = std::chrono::milliseconds(1500);
  o.round_interval = std::chrono::milliseconds(200);
  o.report_interval = std::chrono::milliseconds(100);
  o.silence = std::chrono::seconds(1);
  o.allocation.hysteresis_cpu_cores = 0;
  o.allocation.hysteresis_fraction = 0;
  return o;
}

inline manager_client::ManagerLinkOptions link_options(const std::string& id, int port, manager::Transport transport = {{}, true}) {
  manager_client::ManagerLinkOptions o;
  o.manager = "127.0.0.1:" + std::to_string(port);
  o.node_id = id;
  o.transport = std::move(transport);
  o.cpu_cores = 8;
  o.memory_bytes = 16ull << 30;
  o.backoff_min = std::chrono::milliseconds(50);
  o.backoff_max = std::chrono::milliseconds(200);
  return o;
}

}  // namespace ebb::manager::testing
