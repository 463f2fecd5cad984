#include <catch2/catch.hpp>

#include <numeric>
#include <random>

#include "daemon/arbitration/arbitration.h"

using namespace ebb::arbitration;
using ebb::policy::PriorityClass;

namespace {

std::vector<double> grant(const std::vector<Claim>& claims, double capacity) {
  auto r = arbitrate(claims, capacity);
  REQUIRE(r.ok());
  return *r;
}

Claim want(double cores, PriorityClass c = PriorityClass::burstable, double weight = 1, double floor = 0) {
  return Claim{.wanted_cores = cores, .floor_cores = floor, .weight = weight, .priority = c};
}

int rank(PriorityClass c) {
  return c == PriorityClass::guaranteed ? 0 : c == PriorityClass::burstable ? 1 : 2;
}

}  // namespace

TEST_CASE("everyone gets what they want when it fits") {
  auto g = grant({want(1), want(0.5, PriorityClass::best_effort), want(2, PriorityClass::guaranteed)}, 4);
  CHECK(g == std::vector<double>{1, 0.5, 2});
}

TEST_CASE("equal claims in one class share equally, a small claim is met in full") {
  CHECK_THAT(grant({want(2), want(2), want(2)}, 3), Catch::Approx(std::vector<double>{1, 1, 1}));
  CHECK_THAT(grant({want(0.5), want(2), want(2)}, 3), Catch::Approx(std::vector<double>{0.5, 1.25, 1.25}));
}

TEST_CASE("weights scale the share inside a class") {
  CHECK_THAT(grant({want(3, PriorityClass::burstable, 1), want(3, PriorityClass::burstable, 2)}, 3),
             Catch::Approx(std::vector<double>{1, 2}));
}

TEST_CASE("best-effort shrinks first, then burstable, guaranteed keeps its floor") {
  const std::vector<Claim> claims{want(2, PriorityClass::guaranteed, 1, 1.5), want(2, PriorityClass::burstable),
                                  want(2, PriorityClass::best_effort)};
  CHECK_THAT(grant(claims, 5), Catch::Approx(std::vector<double>{2, 2, 1}));
  CHECK_THAT(grant(claims, 3), Catch::Approx(std::vector<double>{2, 1, 0}));
  CHECK_THAT(grant(claims, 1.2), Catch::Approx(std::vector<double>{1.2, 0, 0}));
}

TEST_CASE("floors of every class come before any want") {
  const std::vector<Claim> claims{want(3, PriorityClass::guaranteed, 1, 1), want(3, PriorityClass::best_effort, 1, 0.5)};
  CHECK_THAT(grant(claims, 2), Catch::Approx(std::vector<double>{1.5, 0.5}));
}

TEST_CASE("invalid inputs are errors, not grants") {
  CHECK_FALSE(arbitrate(std::vector<Claim>{want(1)}, -1).ok());
  CHECK_FALSE(arbitrate(std::vector<Claim>{want(std::nan(""))}, 1).ok());
  CHECK_FALSE(arbitrate(std::vector<Claim>{want(1, PriorityClass::burstable, 0)}, 1).ok());
  CHECK(arbitrate(std::vector<Claim>{}, 1).ok());
}

TEST_CASE("random claims: never above capacity or want, work-conserving, class order and max-min fair") {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> cores(0, 4), unit(0, 1);
  std::uniform_int_distribution<int> count(1, 40), cls(0, 2);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<Claim> claims(static_cast<std::size_t>(count(rng)));
    for (auto& c : claims) {
      c.priority = std::array{PriorityClass::guaranteed, PriorityClass::burstable, PriorityClass::best_effort}[cls(rng)];
      c.wanted_cores = unit(rng) < 0.1 ? 0 : cores(rng);
      c.floor_cores = unit(rng) < 0.5 ? cores(rng) / 2 : 0;
      c.weight = 0.1 + 3 * unit(rng);
    }
    const double wanted = std::accumulate(claims.begin(), claims.end(), 0.0,
                                          [](double s, const Claim& c) { return s + c.wanted_cores; });
    const double capacity = wanted * 1.2 * unit(rng);
    const auto g = grant(claims, capacity);
    const double tol = 1e-7 * std::max(1.0, capacity);  // the arbiter keeps 1e-9 x capacity in reserve

    const double total = std::accumulate(g.begin(), g.end(), 0.0);
    REQUIRE(total <= capacity);
    REQUIRE(total == Approx(std::min(capacity, wanted)).margin(tol));
    for (std::size_t i = 0; i < claims.size(); ++i) {
      REQUIRE(g[i] >= 0);
      REQUIRE(g[i] <= claims[i].wanted_cores);
      const double floor = std::min(claims[i].floor_cores, claims[i].wanted_cores);
      for (std::size_t j = 0; j < claims.size(); ++j) {
        const double floor_j = std::min(claims[j].floor_cores, claims[j].wanted_cores);
        // A claim above its floor means every floor is met and every higher class has its want.
        if (g[i] > floor + tol) {
          REQUIRE(g[j] >= floor_j - tol);
          if (rank(claims[j].priority) < rank(claims[i].priority)) REQUIRE(g[j] == Approx(claims[j].wanted_cores).margin(tol));
        }
        // A floor that is not met means no lower class got anything.
        if (g[i] < floor - tol && rank(claims[j].priority) > rank(claims[i].priority)) REQUIRE(g[j] <= tol);
        // Max-min inside a class: a short-changed claim sits at least as high (per weight) as any
        // claim that was raised above its floor.
        if (claims[i].priority == claims[j].priority && g[i] < claims[i].wanted_cores - tol && g[j] > floor_j + tol)
          REQUIRE(g[i] / claims[i].weight >= g[j] / claims[j].weight - tol);
      }
    }
  }
}
