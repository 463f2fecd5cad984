#pragma once
// The node simulator: replays a workload against one policy, tick by tick, and measures it.
//
// Each tick: memory is checked against memory.max (OOM kill and restart) and memory.high
// (reclaim stall); then CPU demand is served in 10 ms substeps under CFS bandwidth control
// (quota per period, unserved demand queued into a backlog) and the node's CPU capacity; then
// every container's controller gets the Observation ebbd would compute from its cgroup files
// and its Decision is applied for the next tick. See docs/evaluation.md for the model.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/policy/policy.h"
#include "sim/histogram.h"
#include "sim/workload.h"

namespace ebb::sim {

// The demand of the tick a controller is deciding for: only the oracle may hold one.
class NextTick {
 public:
  // `peaks`, when given, holds each container's largest 10 ms demand of the next tick, which
  // the simulator has computed anyway.
  NextTick(const std::vector<float>* cpu, const std::vector<std::uint64_t>* memory, const double* backlog,
           std::size_t index, int substeps, int period_steps, const std::vector<float>* peaks = nullptr)
      : cpu_(cpu),
        memory_(memory),
        peaks_(peaks),
        backlog_(backlog),
        index_(index),
        substeps_(substeps),
        period_steps_(period_steps) {}
  // The largest 10 ms demand of the next tick, plus what the backlog now adds over the tick.
  double peak_cores() const;
  // The least cpu.max under which the next tick's demand, and the backlog now, is served
  // without throttling: CFS lets a container spend its quota at any pace within a period, so
  // that is the largest demand of a period (cut at the tick's ends) per second of it.
  double unthrottled_cores() const;
  std::uint64_t memory_bytes() const { return (*memory_)[index_]; }

 private:
  const std::vector<float>* cpu_;
  const std::vector<std::uint64_t>* memory_;
  const std::vector<float>* peaks_;
  const double* backlog_;
  std::size_t index_;
  int substeps_, period_steps_;
};

// One container's whole trace, surveyed before the run: what a static limit is sized from.
struct TraceSummary {
  Histogram tick_cpu_cores;  // mean demand of each tick
  std::uint64_t peak_memory_bytes = 0;
};

// What the simulator shows a policy beyond the Observations: nothing, except to the
// policies whose definition needs it (the oracle, static limits).
struct PolicyView {
  const ContainerSpec* container = nullptr;
  double compression = 1;
  const NextTick* next = nullptr;
  const TraceSummary* summary = nullptr;
};

using SimControllerFactory =
    std::function<std::unique_ptr<policy::ContainerController>(const policy::ControllerParams&, const PolicyView&)>;

struct SimPolicy {
  std::string name;
  SimControllerFactory make;
  bool needs_summary = false;  // survey the whole trace first (static limits)
};

struct EngineOptions {
  double tick_s = 0.1;
  double cfs_period_s = 0.1;
  double restart_s = 1;     // an OOM-killed container is down this long; its demand is lost
  double stall_gain = 10;   // share of time stalled per relative excess of memory over memory.high
  std::vector<std::size_t> plot_containers;  // indices of the containers to record for plots
  int plot_points = 300;
  std::function<void(double done)> progress;  // called now and then with the share done
};

struct Metrics {
  double relative_slack = 0;       // sum(limit - usage) / sum(usage), CPU
  double waste_p50 = 0;            // per-tick CPU limit - usage, cores
  double waste_p99 = 0;
  double throttled_fraction = 0;   // sum(demand not served when it arrived) / sum(demand)
  double delay_p99_ms = 0;         // backlog delay met by the p99 unit of work
  std::uint64_t oom_kills = 0;
  double mem_relative_slack = 0;   // sum(memory.max - usage) / sum(usage)
  double limit_writes_per_min = 0; // changed cgroup files per container-minute
  double lost_core_s = 0;          // work dropped by OOM kills and restarts
};

// A downsampled trace of one container under one policy, for plots.
struct PlotPoint {
  double t_s = 0;
  double demand_peak = 0;   // max 10 ms CPU demand, cores
  double usage = 0;         // mean CPU usage, cores
  double cpu_limit = 0;     // max CPU limit, cores
  double memory = 0;        // max memory demand, bytes
  double memory_max = 0;    // max memory.max, bytes
};

struct PlotSeries {
  std::string container;
  std::vector<PlotPoint> points;
};

struct RunResult {
  Metrics metrics;
  std::vector<PlotSeries> plots;
};

std::vector<TraceSummary> survey(const Workload& workload, double tick_s);

// Runs `policy` over `workload`. `summaries` is survey()'s output when policy.needs_summary.
RunResult run(const Workload& workload, const SimPolicy& policy, const EngineOptions& options,
              const std::vector<TraceSummary>* summaries = nullptr);

}  // namespace ebb::sim
