#include "sim/decaying_histogram.h"

#include <algorithm>
#include <cmath>

namespace ebb::sim {

namespace {
constexpr double kRescaleAbove = 0x1.0p60;  // long before doubles lose the small weights
}

DecayingHistogram::DecayingHistogram(double first, double ratio, double max_value, double half_life_s)
    : first_(first),
      log_ratio_(std::log(ratio)),
      half_life_s_(half_life_s),
      weights_(2 + static_cast<std::size_t>(std::ceil(std::log(max_value / first) / std::log(ratio))), 0.0) {}

void DecayingHistogram::advance(double t_s) {
  scale_ = std::exp2((t_s - reference_s_) / half_life_s_);
  if (scale_ < kRescaleAbove) return;
  for (double& w : weights_) w /= scale_;
  total_ /= scale_;
  reference_s_ = t_s;
  scale_ = 1;
}

std::size_t DecayingHistogram::bucket(double value) const {
  if (value < first_) return 0;
  const auto k = 1 + static_cast<std::size_t>(std::floor(std::log(value / first_) / log_ratio_));
  return std::min(k, weights_.size() - 1);
}

void DecayingHistogram::add(double value, double weight) {
  const double w = weight * scale_;
  weights_[bucket(value)] += w;
  total_ += w;
}

double DecayingHistogram::percentile(double p) const {
  const double target = p / 100 * total_;
  double seen = 0;
  std::size_t k = 0;
  for (; k + 1 < weights_.size(); ++k) {
    seen += weights_[k];
    if (seen >= target && weights_[k] > 0) break;
  }
  return first_ * std::exp(log_ratio_ * static_cast<double>(k));
}

}  // namespace ebb::sim
