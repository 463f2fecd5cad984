#pragma once
// How far above the forecast to put the limit. The limit is forecast + c x sigma; c is the
// exponentially weighted average of a grid of multipliers, each weighted by its discounted
// counterfactual loss slack + lambda x shortfall (the pinball loss, minimised by the
// lambda / (1 + lambda) quantile of demand). lambda is the dual price of the objective: it
// rises while the container is throttled more than its target and decays while it is not.
#include <array>

namespace ebb::learner {

inline constexpr int kMultipliers = 10;

struct HeadroomParams {
  std::array<double, kMultipliers> multipliers{0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0};
  double hedge_rate = 2.0;
  double loss_decay = 0.97;        // discount of past losses, so the choice can move
  double dual_rate = 0.03;
  double dual_max_step = 1.0;
  double lambda_initial = 20.0;
  double lambda_min = 1.0;
  double lambda_max = 2000.0;
};

class HeadroomSelector {
 public:
  explicit HeadroomSelector(const HeadroomParams& params = {});

  // The multiplier to use now.
  double multiplier() const { return multiplier_; }
  double lambda() const { return lambda_; }

  // Scores every multiplier on the tick that just ended: the forecast and sigma that were in
  // force, and the demand that came. Does not allocate.
  void score(double forecast, double sigma, double demand);
  // Moves the price from the objective error: violation is the observed share (throttled
  // periods, or run-queue latency over target), target the allowed share.
  void price(double violation, double target);

 private:
  void choose();

  HeadroomParams params_;
  std::array<double, kMultipliers> losses_{};
  double lambda_;
  double multiplier_ = 0;
};

}  // namespace ebb::learner
