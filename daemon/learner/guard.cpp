#include "daemon/learner/guard.h"

#include <cstdio>

namespace ebb::learner {

Guard::Guard(const GuardParams& params) : params_(params) {}

void Guard::score(double learner_limit, double heuristic_limit, double demand, double shortfall_price) {
  const auto loss = [&](double limit) {
    return limit >= demand ? limit - demand : shortfall_price * (demand - limit);
  };
  const double a = params_.loss_decay;
  learner_loss_ = a * learner_loss_ + (1 - a) * loss(learner_limit);
  heuristic_loss_ = a * heuristic_loss_ + (1 - a) * loss(heuristic_limit);
  ++scored_;
  // A miss is a tick the learner left demand unserved where the heuristic would have served
  // more: under demand alone is no sign of trouble at a burst nobody could see coming.
  miss_streak_ = learner_limit < demand && heuristic_limit > learner_limit ? miss_streak_ + 1 : 0;

  if (miss_streak_ >= params_.misprediction_streak) {
    trip("misprediction streak: " + std::to_string(miss_streak_) + " ticks under demand");
    miss_streak_ = 0;
  } else if (scored_ >= params_.warmup_ticks && learner_loss_ > params_.loss_ratio * heuristic_loss_ &&
             learner_loss_ > 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "learner loss %.3g is %.1fx the heuristic's", learner_loss_,
                  heuristic_loss_ > 0 ? learner_loss_ / heuristic_loss_ : 0.0);
    trip(buf);
  }
}

void Guard::trip_non_finite() { trip("non-finite forecast: learner reset"); }

void Guard::trip(std::string why) {
  hold_ = params_.fallback_ticks;
  hold_reason_ = std::move(why);
}

std::optional<std::string> Guard::verdict(int observations) {
  if (hold_ > 0) {
    --hold_;
    return hold_reason_;
  }
  if (observations < params_.warmup_ticks)
    return "cold start (" + std::to_string(observations) + " of " + std::to_string(params_.warmup_ticks) + " ticks)";
  return std::nullopt;
}

}  // namespace ebb::learner
