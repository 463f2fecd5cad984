#include "daemon/manager_client/simulated_node.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/control/state_store.h"
#include "sim/synthetic.h"
#include "sim/traces.h"

namespace ebb::manager_client {
namespace {

std::string group_of(const std::string& container) {
  const auto slash = container.find('/');
  return slash == std::string::npos ? std::string() : container.substr(0, slash);
}

std::size_t substeps_per_tick(double tick_s) {
  return std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(tick_s / sim::kSubstepS)));
}

}  // namespace

SimulatedNode::SimulatedNode(std::vector<Container> containers, double tick_s) : substeps_(substeps_per_tick(tick_s)) {
  for (auto& c : containers) containers_.push_back({std::move(c)});
}

Result<std::unique_ptr<SimulatedNode>> SimulatedNode::from_trace_dir(const std::filesystem::path& dir, double time_scale,
                                                                     double tick_s) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path().extension() == ".csv") files.push_back(entry.path());
  if (ec) return system_error("cannot list the trace directory", dir.string(), ec.value());
  if (files.empty()) return Error{"no *.csv trace in " + dir.string()};
  std::sort(files.begin(), files.end());
  std::vector<Container> containers;
  std::uint64_t seed = 1;
  for (const auto& file : files) {
    std::ifstream in(file);
    std::ostringstream text;
    text << in.rdbuf();
    auto traces = sim::parse_trace_csv(text.str(), file.string());
    if (!traces) return traces.error();
    for (auto& [name, series] : *traces) {
      auto spec = sim::series_container(name, std::move(series), time_scale, tick_s, {}, seed++);
      containers.push_back({group_of(name), spec.make_source()});
    }
  }
  return std::make_unique<SimulatedNode>(std::move(containers), tick_s);
}

std::unique_ptr<SimulatedNode> SimulatedNode::synthetic(const std::vector<std::string>& groups, int containers,
                                                        std::uint64_t seed, double tick_s) {
  sim::SyntheticOptions options;
  options.containers = containers;
  options.seed = seed;
  options.tick_s = tick_s;
  auto workload = sim::synthetic_workload("mixed", options);
  std::vector<Container> out;
  for (std::size_t i = 0; i < workload.containers.size(); ++i)
    out.push_back({groups.empty() ? std::string() : groups[i % groups.size()], workload.containers[i].make_source()});
  return std::make_unique<SimulatedNode>(std::move(out), tick_s);
}

void SimulatedNode::step() {
  for (auto& c : containers_) {
    c.memory_bytes = c.container.source->next_tick(substeps_);
    double sum = 0;
    for (float x : substeps_) sum += x;
    c.cpu_cores = sum / static_cast<double>(substeps_.size());
  }
}

std::map<std::string, control::Engine::GroupDemand> SimulatedNode::group_demand() const {
  std::map<std::string, control::Engine::GroupDemand> out;
  for (const auto& c : containers_) {
    if (c.container.group.empty()) continue;
    auto& d = out[c.container.group];
    d.wanted_cpu_cores += c.cpu_cores;
    d.memory_bytes += c.memory_bytes;
    ++d.containers;
  }
  for (auto& [group, d] : out) {
    auto budget = group_budgets_.find(group);
    d.used_cpu_cores = budget == group_budgets_.end() ? d.wanted_cpu_cores : std::min(d.wanted_cpu_cores, budget->second);
  }
  return out;
}

void SimulatedNode::set_group_budget(const std::string& group, std::optional<control::Engine::GroupBudget> budget) {
  if (budget && budget->cpu_cores) group_budgets_[group] = *budget->cpu_cores;
  else group_budgets_.erase(group);
}

namespace {

std::string status_json(const std::string& node_id, const SimulatedNode& node, const LinkStatus& link) {
  nlohmann::json doc;
  doc["node"] = node_id;
  doc["unix_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  doc["connected"] = link.connected;
  doc["local_only"] = link.local_only;
  doc["round"] = link.round;
  doc["group_budgets"] = node.group_budgets();
  doc["node_budget"] = node.node_budget() ? nlohmann::json(*node.node_budget()) : nlohmann::json(nullptr);
  nlohmann::json demand = nlohmann::json::object();
  for (const auto& [group, d] : node.group_demand()) demand[group] = d.wanted_cpu_cores;
  doc["demand"] = demand;
  return doc.dump() + "\n";
}

}  // namespace

int run_simulated_node(const SimulatedNodeOptions& options) {
  const double tick_s = std::chrono::duration<double>(options.tick).count();
  auto node = SimulatedNode::from_trace_dir(options.trace_dir, options.time_scale, tick_s);
  if (!node) {
    std::cerr << "simulated node: " << node.error().to_string() << "\n";
    return 1;
  }
  if (options.link.cpu_cores <= 0) {
    std::cerr << "simulated node: the node's CPU capacity must be given\n";
    return 1;
  }
  boost::asio::io_context io;
  ManagerLink link(io, **node, options.link);
  boost::asio::steady_timer timer(io);
  const auto started = std::chrono::steady_clock::now();
  std::function<void()> tick = [&] {
    (*node)->step();
    if (options.status_file) {
      if (auto s = control::write_file_atomically(*options.status_file, status_json(options.link.node_id, **node, link.status()));
          !s)
        std::cerr << "simulated node: " << s.error().to_string() << "\n";
    }
    if (options.duration.count() > 0 && std::chrono::steady_clock::now() - started >= options.duration) return io.stop();
    timer.expires_after(options.tick);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  };
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
  tick();
  link.start();
  io.run();
  link.stop();
  return 0;
}

}  // namespace ebb::manager_client
