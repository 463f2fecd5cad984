#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "daemon/learner/forecaster.h"

using ebb::learner::DemandForecaster;

TEST_CASE("a constant demand is forecast exactly and its error spread vanishes") {
  DemandForecaster f;
  for (int t = 0; t < 200; ++t) f.observe(1.5);
  CHECK(f.forecast() == Approx(1.5).epsilon(1e-6));
  CHECK(f.sigma_fast() < 1e-6);
  CHECK(f.sigma_slow() < 1e-6);
}

TEST_CASE("an autoregressive demand converges to its conditional mean") {
  // y' = 0.4 + 0.8 y + e, e ~ N(0, 0.05): the best one-step forecast is 0.4 + 0.8 y.
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 0.05);
  DemandForecaster f;
  double y = 2;
  double squared = 0;
  for (int t = 0; t < 3000; ++t) {
    f.observe(y);
    if (t >= 1000) squared += std::pow(f.forecast() - (0.4 + 0.8 * y), 2);
    y = 0.4 + 0.8 * y + noise(rng);
  }
  // The fit's own error is well under the noise: a window of ~1 / (1 - forgetting) ticks
  // estimates the conditional mean to about sigma x sqrt(features / window).
  CHECK(std::sqrt(squared / 2000) < 0.025);
  CHECK(f.sigma_slow() == Approx(0.05).epsilon(0.3));
}

TEST_CASE("the error spread matches white noise around a level") {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.1);
  DemandForecaster f;
  double sum_sigma = 0;
  for (int t = 0; t < 4000; ++t) {
    f.observe(1 + noise(rng));
    if (t >= 2000) sum_sigma += f.sigma_slow();
  }
  // A forecaster over a finite window pays a little for estimating the level: sigma is the
  // noise's 0.1 plus a few percent.
  CHECK(sum_sigma / 2000 == Approx(0.1).epsilon(0.15));
}

TEST_CASE("a step in demand is tracked within a few ticks") {
  DemandForecaster f;
  for (int t = 0; t < 100; ++t) f.observe(1);
  int ticks = 0;
  while (std::abs(f.forecast() - 3) > 0.15 && ticks < 100) {
    f.observe(3);
    ++ticks;
  }
  CHECK(ticks <= 5);
}

TEST_CASE("a linear ramp is forecast ahead, not one tick late") {
  DemandForecaster f;
  for (int t = 0; t < 300; ++t) f.observe(0.01 * t);
  CHECK(f.forecast() == Approx(3.0).margin(0.01));
}

TEST_CASE("an overflowing input is reported as non-finite and reset clears it") {
  DemandForecaster f;
  for (int t = 0; t < 20; ++t) f.observe(1);
  f.observe(1e300);
  f.observe(1e300);
  CHECK_FALSE(f.finite());
  f.reset();
  CHECK(f.finite());
  CHECK(f.observations() == 0);
}
