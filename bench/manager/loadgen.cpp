// ebb-loadgen: many simulated nodes in one process against a running ebb-manager, for the scale
// benchmark. Each node is a SimulatedNode (ebb-sim synthetic containers, dealt to a few of the
// groups) behind its own ManagerLink and connection, exactly as ebbd --simulate runs one. While
// they run, it watches the allocation rounds (their duration as the manager measured it, and
// whether any group's allocations ever summed above its budget) and samples the manager
// process's CPU time and memory from /proc.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "daemon/manager_client/simulated_node.h"
#include "manager/service/client.h"

namespace {

using namespace ebb;
using namespace std::chrono_literals;

struct ProcSample {
  double cpu_s = 0;  // user + system
  double rss_mib = 0, hwm_mib = 0;
};

ProcSample sample_process(int pid) {
  ProcSample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), {});
  // Fields after the command name (which may hold spaces) start after the last ')'.
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) {
      stime = std::stod(field);
      break;
    }
  }
  s.cpu_s = (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string key;
  double kib = 0;
  while (status >> key) {
    if (key == "VmRSS:" && status >> kib) s.rss_mib = kib / 1024;
    if (key == "VmHWM:" && status >> kib) s.hwm_mib = kib / 1024;
  }
  return s;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebb-loadgen: simulated nodes against ebb-manager"};
  std::string manager = "127.0.0.1:7070", cert, key, ca;
  bool plaintext = false;
  int nodes = 1000, groups = 50, groups_per_node = 3, containers = 6, manager_pid = 0;
  double group_cpus = 60, duration_s = 60, settle_s = 60;
  app.add_option("--manager", manager);
  app.add_option("--tls-cert", cert);
  app.add_option("--tls-key", key);
  app.add_option("--tls-ca", ca);
  app.add_flag("--plaintext", plaintext, "loopback only");
  app.add_option("--nodes", nodes);
  app.add_option("--groups", groups);
  app.add_option("--groups-per-node", groups_per_node);
  app.add_option("--containers", containers, "per node");
  app.add_option("--group-cpus", group_cpus, "each group's budget");
  app.add_option("--duration", duration_s, "seconds measured once every node is connected");
  app.add_option("--settle", settle_s, "seconds allowed for every node to connect");
  app.add_option("--manager-pid", manager_pid, "sample this process's CPU and memory");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);  // a thousand links would each log their first allocation

  const manager::Transport transport{{cert, key, ca}, plaintext};
  auto admin = manager::connect_manager(manager, transport);
  if (!admin) {
    std::cerr << "ebb-loadgen: " << admin.error().to_string() << "\n";
    return 1;
  }
  std::vector<std::string> names;
  for (int g = 0; g < groups; ++g) {
    char name[16];
    std::snprintf(name, sizeof name, "g%02d", g);
    names.push_back(name);
    grpc::ClientContext ctx;
    v1::SetGroupBudgetRequest req;
    req.mutable_group()->set_name(name);
    req.mutable_group()->set_cpu_cores(group_cpus);
    req.mutable_group()->set_memory_bytes(256ull << 30);
    v1::Group resp;
    if (auto s = (*admin)->SetGroupBudget(&ctx, req, &resp); !s.ok()) {
      std::cerr << "ebb-loadgen: SetGroupBudget: " << s.error_message() << "\n";
      return 1;
    }
  }

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::unique_ptr<manager_client::SimulatedNode>> sims;
  std::vector<std::unique_ptr<manager_client::ManagerLink>> links;
  for (int n = 0; n < nodes; ++n) {
    std::vector<std::string> mine;
    for (int k = 0; k < groups_per_node; ++k) mine.push_back(names[static_cast<std::size_t>((n * groups_per_node + k) % groups)]);
    sims.push_back(manager_client::SimulatedNode::synthetic(mine, containers, static_cast<std::uint64_t>(n + 1), 0.1));
    manager_client::ManagerLinkOptions o;
    o.manager = manager;
    o.transport = transport;
    char id[16];
    std::snprintf(id, sizeof id, "sim-%04d", n);
    o.node_id = id;
    o.cpu_cores = 16;
    o.memory_bytes = 64ull << 30;
    links.push_back(std::make_unique<manager_client::ManagerLink>(io, *sims.back(), o));
  }
  boost::asio::steady_timer timer(io);
  std::function<void()> step = [&] {
    for (auto& s : sims) s->step();
    timer.expires_after(100ms);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) step();
    });
  };
  boost::asio::post(io, step);
  std::thread loop([&] { io.run(); });
  for (auto& l : links) l->start();

  // Watch rounds from the start: the budget check covers the whole run.
  std::atomic<bool> measuring{false};
  std::mutex mu;
  std::vector<double> durations_us;
  std::uint64_t rounds = 0, violations = 0;
  int connected = 0;
  grpc::ClientContext watch_ctx;
  auto reader = (*admin)->WatchAllocations(&watch_ctx, {});
  std::thread watcher([&] {
    v1::AllocationRound round;
    while (reader->Read(&round)) {
      std::lock_guard lock(mu);
      for (const auto& g : round.groups())
        if (g.allocated_cpu_cores() > g.cpu_cores() * (1 + 1e-9) + 1e-9) ++violations;
      connected = static_cast<int>(std::count_if(round.nodes().begin(), round.nodes().end(),
                                                 [](const v1::NodeStatus& n) { return n.connected(); }));
      if (measuring) {
        ++rounds;
        durations_us.push_back(round.round_duration_us());
      }
    }
  });

  const auto settle_end = std::chrono::steady_clock::now() + std::chrono::duration<double>(settle_s);
  while (std::chrono::steady_clock::now() < settle_end) {
    {
      std::lock_guard lock(mu);
      if (connected >= nodes) break;
    }
    std::this_thread::sleep_for(200ms);
  }
  int connected_at_start;
  {
    std::lock_guard lock(mu);
    connected_at_start = connected;
  }
  const auto before = manager_pid ? sample_process(manager_pid) : ProcSample{};
  const auto started = std::chrono::steady_clock::now();
  measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(duration_s));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const auto after = manager_pid ? sample_process(manager_pid) : ProcSample{};

  watch_ctx.TryCancel();
  watcher.join();
  for (auto& l : links) l->stop();
  work.reset();
  io.stop();
  loop.join();

  std::lock_guard lock(mu);
  std::printf("nodes %d (connected at start %d, at end %d), groups %d, groups per node %d\n", nodes, connected_at_start,
              connected, groups, groups_per_node);
  std::printf("rounds measured %llu over %.1f s\n", static_cast<unsigned long long>(rounds), elapsed);
  std::printf("round duration us: p50 %.0f p99 %.0f max %.0f\n", percentile(durations_us, 0.5),
              percentile(durations_us, 0.99), percentile(durations_us, 1.0));
  if (manager_pid)
    std::printf("manager: cpu %.1f%% of one core, rss %.1f MiB, peak rss %.1f MiB\n",
                100 * (after.cpu_s - before.cpu_s) / elapsed, after.rss_mib, after.hwm_mib);
  std::printf("budget exceeded in %llu group-rounds\n", static_cast<unsigned long long>(violations));
  return violations == 0 && connected_at_start == nodes ? 0 : 1;
}
