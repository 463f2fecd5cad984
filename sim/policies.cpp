#include "sim/policies.h"

#include <memory>

#include "daemon/policy/heuristic.h"
#include "daemon/learner/learner.h"
#include "sim/baselines.h"

namespace ebb::sim {

namespace {

// A policy ebbd runs: it gets the Observations and nothing else.
SimPolicy daemon_policy(std::string name, policy::ControllerFactory factory) {
  return {std::move(name), [factory](const policy::ControllerParams& p, const PolicyView&) { return factory(p); }};
}

std::vector<SimPolicy> make_policies() {
  std::vector<SimPolicy> out;
  out.push_back({"static",
                 [](const policy::ControllerParams& p, const PolicyView& v) {
                   return std::make_unique<StaticController>(p, *v.summary);
                 },
                 true});
  out.push_back({"vpa", [](const policy::ControllerParams& p, const PolicyView& v) {
                   return std::make_unique<VpaController>(p, v.compression);
                 }});
  out.push_back({"autopilot", [](const policy::ControllerParams& p, const PolicyView& v) {
                   return std::make_unique<AutopilotController>(p, v.compression);
                 }});
  out.push_back(daemon_policy("escra", [](const policy::ControllerParams& p) {
    return std::make_unique<EscraController>(p);
  }));
  out.push_back(daemon_policy("autothrottle", [](const policy::ControllerParams& p) {
    return std::make_unique<AutothrottleController>(p);
  }));
  out.push_back(daemon_policy("ebb-heuristic", policy::heuristic_factory()));
  out.push_back(daemon_policy("ebb", learner::learner_factory()));
  for (auto cpu : {OracleController::Cpu::peak, OracleController::Cpu::cfs}) {
    out.push_back({cpu == OracleController::Cpu::peak ? "oracle" : "oracle-cfs",
                   [cpu](const policy::ControllerParams&, const PolicyView& v) {
                     return std::make_unique<OracleController>(*v.next, cpu);
                   }});
  }
  return out;
}

std::vector<std::string_view> split(std::string_view list) {
  std::vector<std::string_view> out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace

const std::vector<SimPolicy>& all_policies() {
  static const std::vector<SimPolicy> policies = make_policies();
  return policies;
}

Result<std::vector<SimPolicy>> select_policies(std::string_view list) {
  if (list == "all") return all_policies();
  std::vector<SimPolicy> out;
  for (auto name : split(list)) {
    bool found = false;
    for (const auto& p : all_policies()) {
      if (p.name == name) {
        out.push_back(p);
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (const auto& p : all_policies()) known += (known.empty() ? "" : ", ") + p.name;
      return Error{"unknown policy '" + std::string(name) + "' (known: " + known + ")"};
    }
  }
  if (out.empty()) return Error{"no policy selected"};
  return out;
}

}  // namespace ebb::sim
