#include "daemon/learner/forecaster.h"

#include <algorithm>
#include <cmath>

namespace ebb::learner {

DemandForecaster::DemandForecaster(const ForecasterParams& params) : params_(params) { reset(); }

void DemandForecaster::reset() {
  // Prior: tomorrow looks like today (coefficient 1 on the last demand). A cold learner then
  // behaves like a last-value predictor until the data say otherwise.
  theta_ = Vector::Zero();
  theta_(1) = 1;
  p_ = Matrix::Identity() * params_.initial_covariance;
  std::fill(std::begin(lags_), std::end(lags_), 0.0);
  slow_mean_ = long_mean_ = peak_ = squared_error_fast_ = squared_error_slow_ = last_error_ = 0;
  observations_ = 0;
}

DemandForecaster::Vector DemandForecaster::features() const {
  Vector x;
  x << 1, lags_[0], lags_[1], slow_mean_;
  return x;
}

void DemandForecaster::observe(double demand) {
  if (observations_ > 0) {
    const Vector x = features();
    last_error_ = demand - theta_.dot(x);
    const double e2 = last_error_ * last_error_;
    const auto ewma = [&](double& v, double decay) { v = observations_ == 1 ? e2 : decay * v + (1 - decay) * e2; };
    ewma(squared_error_fast_, params_.residual_decay_fast);
    ewma(squared_error_slow_, params_.residual_decay_slow);
    // RLS with forgetting: k = P x / (lambda + x'P x), theta += k e, P = (P - k x'P) / lambda.
    const Vector px = p_ * x;
    const Vector gain = px / (params_.forgetting + x.dot(px));
    theta_ += gain * last_error_;
    p_ = (p_ - gain * px.transpose()) / params_.forgetting;
    // Forgetting inflates P in directions the data do not excite (a steady signal excites only
    // one); bounding its trace keeps one new sample from swinging the fit (covariance windup),
    // and symmetrising removes the rounding drift of the rank-one downdate.
    p_ = 0.5 * (p_ + p_.transpose()).eval();
    const double bound = kFeatures * params_.initial_covariance;
    if (p_.trace() > bound) p_ *= bound / p_.trace();
  }
  lags_[1] = lags_[0];
  lags_[0] = demand;
  slow_mean_ = observations_ == 0 ? demand : params_.slow_mean_decay * slow_mean_ + (1 - params_.slow_mean_decay) * demand;
  peak_ = std::max(demand, peak_ * params_.peak_decay);
  long_mean_ = observations_ == 0 ? demand : params_.long_mean_decay * long_mean_ + (1 - params_.long_mean_decay) * demand;
  if (observations_ == 0) std::fill(std::begin(lags_), std::end(lags_), demand);
  ++observations_;
}

double DemandForecaster::forecast() const {
  return std::clamp(theta_.dot(features()), 0.0, 2 * std::max({lags_[0], lags_[1], slow_mean_}));
}

double DemandForecaster::sigma_fast() const { return std::sqrt(squared_error_fast_); }
double DemandForecaster::sigma_slow() const { return std::sqrt(squared_error_slow_); }

bool DemandForecaster::finite() const {
  return theta_.allFinite() && p_.allFinite() && std::isfinite(squared_error_fast_) && std::isfinite(squared_error_slow_) && std::isfinite(slow_mean_) && std::isfinite(peak_) && std::isfinite(long_mean_);
}

}  // namespace ebb::learner
