#pragma once
// A node whose containers are played from traces with ebb-sim's demand models instead of real
// cgroups, linked to ebb-manager like a real ebbd: many nodes on one machine for the multi-host
// test (`ebbd --simulate TRACE_DIR`) and the scale benchmark (ebb-loadgen).
//
// Trace directory: every *.csv in it is an ebb-sim trace (docs/evaluation.md: header
// "time_s,container,cpu_cores,memory_bytes"). A container named "GROUP/NAME" belongs to budget
// group GROUP; other containers belong to none. Trace time 0 is the node's start.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/common/error.h"
#include "daemon/manager_client/manager_link.h"
#include "sim/workload.h"

namespace ebb::manager_client {

class SimulatedNode : public LocalNode {
 public:
  struct Container {
    std::string group;
    std::unique_ptr<sim::DemandSource> source;
  };
  // `tick_s` is the step of the sources (wall seconds per step()).
  SimulatedNode(std::vector<Container> containers, double tick_s);

  // time_scale: trace seconds per wall second.
  static Result<std::unique_ptr<SimulatedNode>> from_trace_dir(const std::filesystem::path& dir, double time_scale,
                                                               double tick_s);
  // `containers` ebb-sim synthetic containers ("mixed" kinds), dealt round-robin to `groups`.
  static std::unique_ptr<SimulatedNode> synthetic(const std::vector<std::string>& groups, int containers,
                                                  std::uint64_t seed, double tick_s);

  // Advances every container by one tick. A group's containers use at most the group's budget
  // on this node, shared in proportion to their demand.
  void step();

  std::map<std::string, control::Engine::GroupDemand> group_demand() const override;
  // The simulated containers play CPU demand only against the budget; memory is reported as played.
  void set_group_budget(const std::string& group, std::optional<control::Engine::GroupBudget> budget) override;
  void set_node_budget(std::optional<double> cpu_cores) override { node_budget_ = cpu_cores; }

  const std::map<std::string, double>& group_budgets() const { return group_budgets_; }
  std::optional<double> node_budget() const { return node_budget_; }

 private:
  struct Live {
    Container container;
    double cpu_cores = 0;  // mean demand over the last tick
    std::uint64_t memory_bytes = 0;
  };
  std::vector<Live> containers_;
  std::vector<float> substeps_;
  std::map<std::string, double> group_budgets_;
  std::optional<double> node_budget_;
};

struct SimulatedNodeOptions {
  std::filesystem::path trace_dir;
  ManagerLinkOptions link;   // cpu_cores and memory_bytes are required (there is no kernel to ask)
  double time_scale = 1;
  std::chrono::milliseconds tick{100};
  // Rewritten atomically every tick: what the node has in force, as JSON (for tests).
  std::optional<std::filesystem::path> status_file;
  std::chrono::milliseconds duration{0};  // 0: until SIGINT or SIGTERM
};

// Runs one simulated node until the duration ends or a signal arrives. Returns the exit code
// (0, or 1 after printing the error to stderr).
int run_simulated_node(const SimulatedNodeOptions& options);

}  // namespace ebb::manager_client
