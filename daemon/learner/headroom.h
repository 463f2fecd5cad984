#pragma once
// How far above the forecast to put the limit. Each expert proposes forecast + c x s: s is one
// of three scales and c a multiplier from that scale's grid. Two scales are RMS forecast
// errors, one that forgets in a few ticks (noise that changes with the level) and one that
// remembers about a minute (bursts that come back); the third is the distance from the
// forecast up to the recent peak of demand (bursts no forecast sees coming). Experts are
// weighted by their discounted counterfactual loss slack + lambda x shortfall, the pinball
// loss, minimised by the lambda / (1 + lambda) quantile of demand; the headroom is their
// weighted average. lambda is the dual price of the objective: it rises while the container is
// throttled more than its target and decays while it is not.
#include <array>

namespace ebb::learner {

inline constexpr int kMultipliers = 10;
inline constexpr int kScales = 3;
inline constexpr int kExperts = kMultipliers * kScales;

// The scales, in cores: [0] fast error RMS, [1] slow error RMS, [2] recent peak - forecast.
using Scales = std::array<double, kScales>;
using Grid = std::array<double, kMultipliers>;

struct HeadroomParams {
  std::array<Grid, kScales> multipliers{Grid{0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0},
                                        Grid{0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0},
                                        Grid{0.0, 0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0, 1.15}};
  double hedge_rate = 2.0;
  double loss_decay = 0.99;        // discount of past losses, so the choice can move
  // log lambda moves by dual_rate x (violation - target) / target per tick: down by dual_rate
  // on a clean tick, up by up to dual_rate x (1 / target - 1) on a fully violated one, so it
  // settles where violations average the target.
  double dual_rate = 0.02;
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
