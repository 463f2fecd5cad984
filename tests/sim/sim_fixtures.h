#pragma once
// Hand-built workloads and scripted controllers for the simulator's tests.
#include <functional>
#include <memory>
#include <vector>

#include "sim/engine.h"

namespace ebb::sim::testing {

constexpr std::uint64_t MiB = 1ull << 20;

// Demand given per tick: cpu(tick, substep) in cores and memory(tick) in bytes.
struct Script {
  std::function<double(std::int64_t tick, int substep)> cpu = [](std::int64_t, int) { return 0.0; };
  std::function<std::uint64_t(std::int64_t tick)> memory = [](std::int64_t) { return 100 * MiB; };
};

class ScriptedSource final : public DemandSource {
 public:
  explicit ScriptedSource(Script s) : script_(std::move(s)) {}
  std::uint64_t next_tick(std::span<float> cpu) override {
    for (std::size_t j = 0; j < cpu.size(); ++j) cpu[j] = static_cast<float>(script_.cpu(tick_, static_cast<int>(j)));
    return script_.memory(tick_++);
  }

 private:
  Script script_;
  std::int64_t tick_ = 0;
};

inline ContainerSpec scripted(const Script& s, double cpu_bound = 4, std::uint64_t memory_bound = 1024 * MiB) {
  ContainerSpec c;
  c.name = "c";
  c.make_source = [s] { return std::make_unique<ScriptedSource>(s); };
  c.cpu_bound_cores = cpu_bound;
  c.memory_bound_bytes = memory_bound;
  return c;
}

inline Workload workload(std::vector<ContainerSpec> containers, double duration_s, double node_cpus = 64) {
  Workload w;
  w.name = "test";
  w.containers = std::move(containers);
  w.duration_s = duration_s;
  w.node_cpu_cores = node_cpus;
  w.node_memory_bytes = 64ull << 30;
  return w;
}

// Returns limits(tick) each tick (tick -1 is the first decision) and records what it saw.
class ScriptedController final : public policy::ContainerController {
 public:
  ScriptedController(std::function<policy::Limits(std::int64_t)> limits, std::vector<policy::Observation>* seen)
      : limits_(std::move(limits)), seen_(seen) {}
  policy::Decision decide(const policy::Observation& o) override {
    if (seen_) seen_->push_back(o);
    return {limits_(tick_++), "test", "", {}};
  }
  std::string name() const override { return "scripted"; }

 private:
  std::function<policy::Limits(std::int64_t)> limits_;
  std::vector<policy::Observation>* seen_;
  std::int64_t tick_ = -1;
};

inline SimPolicy scripted_policy(std::function<policy::Limits(std::int64_t)> limits,
                                 std::vector<policy::Observation>* seen = nullptr) {
  return {"scripted", [limits, seen](const policy::ControllerParams&, const PolicyView&) {
            return std::make_unique<ScriptedController>(limits, seen);
          }};
}

inline SimPolicy fixed_policy(double cpu, std::uint64_t memory_max, std::vector<policy::Observation>* seen = nullptr) {
  return scripted_policy([=](std::int64_t) { return policy::Limits{cpu, std::nullopt, memory_max}; }, seen);
}

}  // namespace ebb::sim::testing
