#pragma once
// Next-tick CPU demand forecast: recursive least squares with exponential forgetting over a
// few features of the recent demand, and the spread of its errors. Fixed-size Eigen types:
// one update is about a hundred flops and never allocates.
#include <Eigen/Core>

namespace ebb::learner {

struct ForecasterParams {
  double forgetting = 0.97;           // RLS lambda: remembers about 1 / (1 - lambda) ticks
  double initial_covariance = 100;    // P0 = this x I; trace(P) is kept under kFeatures x this
  double residual_decay_fast = 0.9;   // EWMAs of squared errors: a few ticks ...
  double residual_decay_slow = 0.995;  // ... and about a minute at 0.1 s ticks
  double slow_mean_decay = 0.9;   // EWMA that gives the regression a level to revert to
  double long_mean_decay = 0.99;  // the mean that weighs a tick's violation by its demand
  double peak_decay = 0.998;      // per tick: the recent peak fades, half-life ~350 ticks
};

class DemandForecaster {
 public:
  static constexpr int kFeatures = 4;  // 1, y_t, y_t-1, slow mean
  using Vector = Eigen::Matrix<double, kFeatures, 1>;
  using Matrix = Eigen::Matrix<double, kFeatures, kFeatures>;

  explicit DemandForecaster(const ForecasterParams& params = {});

  // Feeds the demand of the tick that just ended; afterwards forecast() is for the next tick.
  // The first call only primes the history.
  void observe(double demand);
  // Expected demand of the next tick, within [0, 2 x the largest of the recent demands and
  // the mean]: beyond that a fit is extrapolating from a jump, not forecasting.
  double forecast() const;
  double sigma_fast() const;     // RMS of one-tick forecast errors, recent ticks
  double sigma_slow() const;     // the same over a long memory
  double peak() const { return peak_; }  // recent peak of demand, decaying
  double long_mean() const { return long_mean_; }  // mean demand over ~1 / (1 - long_mean_decay) ticks
  double last_error() const { return last_error_; }
  int observations() const { return observations_; }
  bool finite() const;
  void reset();

  const Vector& coefficients() const { return theta_; }

 private:
  Vector features() const;

  ForecasterParams params_;
  Vector theta_;
  Matrix p_;
  double lags_[2] = {0, 0};
  double slow_mean_ = 0;
  double peak_ = 0;
  double long_mean_ = 0;
  double squared_error_fast_ = 0;
  double squared_error_slow_ = 0;
  double last_error_ = 0;
  int observations_ = 0;
};

}  // namespace ebb::learner
