#pragma once
// How far above the forecast to put the limit. Each expert k proposes forecast + c_k x s_k,
// where c_k is a multiplier from a grid and s_k one of two error scales: one that forgets in
// a few ticks (for demand whose noise changes with its level) and one that remembers for
// minutes (for bursts that come back). Experts are weighted by their discounted
// counterfactual loss slack + lambda x shortfall, the pinball loss, minimised by the
// lambda / (1 + lambda) quantile of demand; the headroom is their weighted average. lambda is
// the dual price of the objective: it rises while the container is throttled more than its
// target and decays while it is not.
#include <array>

namespace ebb::learner {

inline constexpr int kMultipliers = 10;
inline constexpr int kScales = 2;
inline constexpr int kExperts = kMultipliers * kScales;

// The two error scales, in cores: [0] forgets fast, [1] slowly.
using Scales = std::array<double, kScales>;

struct HeadroomParams {
  std::array<double, kMultipliers> multipliers{0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0};
  double hedge_rate = 2.0;
  double loss_decay = 0.98;        // discount of past losses, so the choice can move
  double dual_rate = 0.03;
  double dual_max_step = 1.0;
  double lambda_initial = 20.0;
  double lambda_min = 1.0;
  double lambda_max = 2000.0;
};

class HeadroomSelector {
 public:
  explicit HeadroomSelector(const HeadroomParams& params = {});

  // The headroom to add to the forecast now, in cores.
  double headroom(const Scales& scales) const;
  double lambda() const { return lambda_; }

  // Scores every expert on the tick that just ended: the forecast and scales that were in
  // force, and the demand that came. Does not allocate.
  void score(double forecast, const Scales& scales, double demand);
  // Moves the price from the objective error: violation is the observed share (throttled
  // periods, or run-queue latency over target), target the allowed share.
  void price(double violation, double target);

 private:
  void reweigh();

  HeadroomParams params_;
  std::array<double, kExperts> losses_{};
  std::array<double, kExperts> weights_{};  // normalised
  double lambda_;
};

}  // namespace ebb::learner
