// Evaluates the learner alone on ebb-sim's synthetic suite with some parameters overridden,
// for exploring LearnerParams without rebuilding ebb-sim:
//
//   learner_sweep [--seed N] [key=value ...]
//
// keys: objective (the container's throttled-fraction target), forgetting, hedge_rate,
// loss_decay, dual_rate, peak_decay, censored_inflation, throttled_time_weight,
// memory_max_half_life_s, hold_lower, hold_raise, memory_hold_band. Prints one line per
// workload: CPU relative slack, throttled fraction, OOM kills, memory slack and limit writes
// per container-minute, as ebb-sim's results.csv defines them.
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "daemon/learner/learner.h"
#include "sim/engine.h"
#include "sim/synthetic.h"

namespace {

using ebb::learner::LearnerParams;

struct Setting {
  LearnerParams learner;
  double objective = ebb::policy::Objective{}.throttled_fraction;
};

const std::map<std::string, std::function<void(Setting&, double)>>& keys() {
  static const std::map<std::string, std::function<void(Setting&, double)>> k{
      {"objective", [](Setting& s, double v) { s.objective = v; }},
      {"forgetting", [](Setting& s, double v) { s.learner.forecast.forgetting = v; }},
      {"hedge_rate", [](Setting& s, double v) { s.learner.headroom.hedge_rate = v; }},
      {"loss_decay", [](Setting& s, double v) { s.learner.headroom.loss_decay = v; }},
      {"dual_rate", [](Setting& s, double v) { s.learner.headroom.dual_rate = v; }},
      {"peak_decay", [](Setting& s, double v) { s.learner.forecast.peak_decay = v; }},
      {"censored_inflation", [](Setting& s, double v) { s.learner.cpu.censored_inflation = v; }},
      {"throttled_time_weight", [](Setting& s, double v) { s.learner.cpu.throttled_time_weight = v; }},
      {"memory_max_half_life_s", [](Setting& s, double v) { s.learner.memory.max_half_life_s = v; }},
      {"hold_lower", [](Setting& s, double v) { s.learner.cpu.hold_lower = v; }},
      {"hold_raise", [](Setting& s, double v) { s.learner.cpu.hold_raise = v; }},
      {"memory_hold_band", [](Setting& s, double v) { s.learner.memory.hold_band = v; }},
  };
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  Setting setting;
  ebb::sim::SyntheticOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seed" && i + 1 < argc) {
      options.seed = std::strtoull(argv[++i], nullptr, 10);
      continue;
    }
    const auto eq = arg.find('=');
    const auto key = eq == std::string::npos ? keys().end() : keys().find(arg.substr(0, eq));
    if (key == keys().end()) {
      std::fprintf(stderr, "usage: %s [--seed N] [key=value ...]; unknown argument '%s'\n", argv[0], arg.c_str());
      return 2;
    }
    key->second(setting, std::strtod(arg.c_str() + eq + 1, nullptr));
  }

  const ebb::sim::SimPolicy policy{"ebb", [&setting](const ebb::policy::ControllerParams& p, const ebb::sim::PolicyView&) {
                                     auto params = p;
                                     params.objective.throttled_fraction = setting.objective;
                                     return ebb::learner::learner_factory(setting.learner)(params);
                                   }};
  for (const auto& name : ebb::sim::synthetic_kind_names()) {
    auto workload = ebb::sim::synthetic_workload(name, options);
    ebb::sim::size_node(workload);
    const auto m = ebb::sim::run(workload, policy, ebb::sim::EngineOptions{}).metrics;
    std::printf("%-9s slack %.3f throttled %.6f oom %llu memory_slack %.2f writes/min %.1f\n", name.c_str(),
                m.relative_slack, m.throttled_fraction, static_cast<unsigned long long>(m.oom_kills), m.mem_relative_slack,
                m.limit_writes_per_min);
  }
  return 0;
}
