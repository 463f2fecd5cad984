#include "daemon/learner/headroom.h"

#include <algorithm>
#include <cmath>

namespace ebb::learner {

HeadroomSelector::HeadroomSelector(const HeadroomParams& params) : params_(params), lambda_(params.lambda_initial) {
  choose();
}

void HeadroomSelector::score(double forecast, double sigma, double demand) {
  if (sigma <= 0) return;  // no spread yet: every multiplier gives the same limit
  // Normalised by sigma (1 + lambda) the loss stays O(1) whatever the container's size and the
  // price, so one hedge rate fits all containers.
  const double norm = sigma * (1 + lambda_);
  for (int k = 0; k < kMultipliers; ++k) {
    const double gap = forecast + params_.multipliers[k] * sigma - demand;
    const double loss = gap >= 0 ? gap : -lambda_ * gap;
    losses_[k] = params_.loss_decay * losses_[k] + loss / norm;
  }
  choose();
}

void HeadroomSelector::price(double violation, double target) {
  const double step = params_.dual_rate * (violation - target) / std::max(target, 1e-6);
  const double log_lambda = std::log(lambda_) + std::clamp(step, -params_.dual_max_step, params_.dual_max_step);
  lambda_ = std::clamp(std::exp(log_lambda), params_.lambda_min, params_.lambda_max);
}

void HeadroomSelector::choose() {
  const double best = *std::min_element(losses_.begin(), losses_.end());
  double weight_sum = 0, weighted = 0;
  for (int k = 0; k < kMultipliers; ++k) {
    const double w = std::exp(-params_.hedge_rate * (losses_[k] - best));
    weight_sum += w;
    weighted += w * params_.multipliers[k];
  }
  multiplier_ = weighted / weight_sum;
}

}  // namespace ebb::learner
