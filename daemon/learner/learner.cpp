#include "daemon/learner/learner.h"

#include <memory>

namespace ebb::learner {
namespace {

// First cut: the guard's cold-start path only, so ebb-sim and ebbd can link the factory while
// the forecaster lands.
class LearnerController final : public policy::ContainerController {
 public:
  LearnerController(const policy::ControllerParams& params, const LearnerParams& learner)
      : heuristic_(params, learner.fallback) {}

  policy::Decision decide(const policy::Observation& observation) override {
    auto d = heuristic_.decide(observation);
    d.source = "fallback";
    d.reason = "fallback: cold start; " + d.reason;
    return d;
  }
  std::string name() const override { return "ebb"; }

 private:
  policy::HeuristicController heuristic_;
};

}  // namespace

policy::ControllerFactory learner_factory(const LearnerParams& params) {
  return [params](const policy::ControllerParams& p) { return std::make_unique<LearnerController>(p, params); };
}

}  // namespace ebb::learner
