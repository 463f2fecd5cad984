#include <catch2/catch.hpp>

#include <random>

#include "daemon/learner/headroom.h"

using ebb::learner::HeadroomParams;
using ebb::learner::HeadroomSelector;
using ebb::learner::Scales;

namespace {

const Scales kUnit{1, 1, 0};

// Share of draws above forecast + multiplier x sigma once the selector has settled, with the
// price held fixed (price() never called).
double exceedance(double lambda, std::uint64_t seed) {
  HeadroomParams p;
  p.lambda_initial = lambda;
  HeadroomSelector h(p);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> demand(0, 1);
  int above = 0, n = 0;
  for (int t = 0; t < 20000; ++t) {
    const double y = demand(rng);
    if (t >= 2000) {
      ++n;
      above += y > h.headroom(kUnit);
    }
    h.score(0, kUnit, y);
  }
  return static_cast<double>(above) / n;
}

}  // namespace

TEST_CASE("at a fixed price the limit settles near the lambda / (1 + lambda) quantile") {
  // Pinball loss at price lambda is minimised at the quantile 1 - 1 / (1 + lambda); the grid
  // and the discounting blur it a little.
  CHECK(exceedance(9, 1) == Approx(0.1).margin(0.04));
  CHECK(exceedance(99, 2) == Approx(0.01).margin(0.01));
  CHECK(exceedance(1, 3) == Approx(0.5).margin(0.1));
}

TEST_CASE("a higher price buys more headroom") {
  HeadroomParams cheap, dear;
  cheap.lambda_initial = 2;
  dear.lambda_initial = 200;
  HeadroomSelector a(cheap), b(dear);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> demand(0, 1);
  for (int t = 0; t < 2000; ++t) {
    const double y = demand(rng);
    a.score(0, kUnit, y);
    b.score(0, kUnit, y);
  }
  CHECK(b.headroom(kUnit) > a.headroom(kUnit) + 1);
}

TEST_CASE("the price rises on violations above the target and decays below it, within its bounds") {
  HeadroomParams p;
  HeadroomSelector h(p);
  const double start = h.lambda();
  h.price(0.5, 0.01);
  CHECK(h.lambda() > start);
  CHECK(h.lambda() == Approx(start * std::exp(p.dual_rate * (0.5 - 0.01) / 0.01)));
  for (int t = 0; t < 10000; ++t) h.price(0, 0.01);
  CHECK(h.lambda() == Approx(p.lambda_min));
  for (int t = 0; t < 10000; ++t) h.price(1, 0.01);
  CHECK(h.lambda() == Approx(p.lambda_max));
}

TEST_CASE("without spread every multiplier is the same limit and the scores stay put") {
  HeadroomSelector h;
  const double before = h.headroom(kUnit);
  h.score(1, Scales{0, 0, 0}, 5);
  CHECK(h.headroom(kUnit) == before);
}

TEST_CASE("the experts on the scale that predicts the errors win the weight") {
  // Errors are N(0, 1) while the fast scale claims 0.1: a multiplier on the slow scale (which
  // is right) must carry the quantile, so the headroom ends up in slow-scale units.
  HeadroomParams p;
  p.lambda_initial = 9;
  HeadroomSelector h(p);
  std::mt19937_64 rng(9);
  std::normal_distribution<double> demand(0, 1);
  const Scales scales{0.1, 1, 0};
  int above = 0;
  for (int t = 0; t < 20000; ++t) {
    const double y = demand(rng);
    if (t >= 2000) above += y > h.headroom(scales);
    h.score(0, scales, y);
  }
  CHECK(above / 18000.0 == Approx(0.1).margin(0.04));
}
