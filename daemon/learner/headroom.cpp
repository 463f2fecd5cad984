#include "daemon/learner/headroom.h"

#include <algorithm>
#include <cmath>

namespace ebb::learner {

namespace {
double expert_headroom(const HeadroomParams& p, int k, const Scales& scales) {
  return p.multipliers[k / kMultipliers][k % kMultipliers] * scales[k / kMultipliers];
}
}  // namespace

HeadroomSelector::HeadroomSelector(const HeadroomParams& params) : params_(params), lambda_(params.lambda_initial) {
  reweigh();
}

double HeadroomSelector::headroom(const Scales& scales) const {
  double h = 0;
  for (int k = 0; k < kExperts; ++k) h += weights_[k] * expert_headroom(params_, k, scales);
  return h;
}

void HeadroomSelector::score(double forecast, const Scales& scales, double demand) {
  const double scale = std::max({scales[0], scales[1], scales[2]});
  if (scale <= 0) return;  // no spread yet: every expert gives the same limit
  // Normalised by scale x (1 + lambda) a loss stays O(1) whatever the container's size and
  // the price, so one hedge rate fits all containers.
  const double norm = scale * (1 + lambda_);
  for (int k = 0; k < kExperts; ++k) {
    const double gap = forecast + expert_headroom(params_, k, scales) - demand;
    const double loss = gap >= 0 ? gap : -lambda_ * gap;
    losses_[k] = params_.loss_decay * losses_[k] + loss / norm;
  }
  reweigh();
}

void HeadroomSelector::price(double violation, double target) {
  const double step = params_.dual_rate * (violation - target) / std::max(target, 1e-6);
  lambda_ = std::clamp(lambda_ * std::exp(step), params_.lambda_min, params_.lambda_max);
}

void HeadroomSelector::reweigh() {
  const double best = *std::min_element(losses_.begin(), losses_.end());
  double sum = 0;
  for (int k = 0; k < kExperts; ++k) sum += weights_[k] = std::exp(-params_.hedge_rate * (losses_[k] - best));
  for (auto& w : weights_) w /= sum;
}

}  // namespace ebb::learner
