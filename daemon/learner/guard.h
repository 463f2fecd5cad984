#pragma once
// The safety guard: decides, tick by tick, whether the learner's CPU limit may be used or the
// heuristic's must. It distrusts the learner on cold start, after a non-finite forecast, after a
// streak of forecasts below demand, and while the learner's recent loss is well above the
// heuristic's on the same ticks; a trip holds for a while so control does not flap.
#include <optional>
#include <string>

namespace ebb::learner {

struct GuardParams {
  int warmup_ticks = 10;           // cold start: observations before the learner is trusted
  int misprediction_streak = 3;    // consecutive ticks with the learner's limit under demand
                                   // and under the heuristic's
  double loss_ratio = 2.0;         // learner loss above this x the heuristic's trips the guard
  double loss_decay = 0.99;        // EWMA of both losses: long enough to span burst cycles
  int fallback_ticks = 20;         // how long a trip keeps the heuristic in charge
};

class Guard {
 public:
  explicit Guard(const GuardParams& params = {});

  // Scores the CPU limits both controllers proposed for the tick that just ended against the
  // demand it brought, priced like the headroom selector prices shortfall.
  void score(double learner_limit, double heuristic_limit, double demand, double shortfall_price);
  // A non-finite forecast: the learner was reset and must not decide for a while.
  void trip_non_finite();
  // Advances one tick; returns why the heuristic decides this tick, or nullopt when the learner
  // may. `observations` is how many ticks the learner has learnt from.
  std::optional<std::string> verdict(int observations);

  double learner_loss() const { return learner_loss_; }
  double heuristic_loss() const { return heuristic_loss_; }

 private:
  void trip(std::string why);

  GuardParams params_;
  double learner_loss_ = 0;
  double heuristic_loss_ = 0;
  int scored_ = 0;
  int miss_streak_ = 0;
  int hold_ = 0;
  std::string hold_reason_;
};

}  // namespace ebb::learner
