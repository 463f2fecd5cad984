#include <catch2/catch.hpp>

#include "daemon/learner/guard.h"

using ebb::learner::Guard;
using ebb::learner::GuardParams;

namespace {

GuardParams quick() {
  GuardParams p;
  p.warmup_ticks = 3;
  p.misprediction_streak = 3;
  p.fallback_ticks = 5;
  p.loss_decay = 0.9;
  return p;
}

bool trusted(Guard& g, int observations = 100) { return !g.verdict(observations).has_value(); }

}  // namespace

TEST_CASE("the guard distrusts a learner that has not seen enough ticks") {
  Guard g(quick());
  auto v = g.verdict(1);
  REQUIRE(v);
  CHECK(v->find("cold start") == 0);
  CHECK(trusted(g, 3));
}

TEST_CASE("a streak of forecasts under demand trips the guard for a while") {
  Guard g(quick());
  g.score(1, 1.5, 2, 10);
  g.score(1, 1.5, 2, 10);
  CHECK(trusted(g));  // two misses are not a streak yet
  g.score(1, 1.5, 2, 10);
  auto v = g.verdict(100);
  REQUIRE(v);
  CHECK(v->find("misprediction streak") == 0);
  for (int t = 0; t < 4; ++t) CHECK_FALSE(trusted(g));  // held for fallback_ticks in all
  CHECK(trusted(g));
}

TEST_CASE("a hit ends the streak") {
  Guard g(quick());
  for (int t = 0; t < 10; ++t) {
    g.score(1, 1.5, 2, 10);
    g.score(3, 3, 2, 10);
  }
  CHECK(trusted(g));
}

TEST_CASE("under demand where the heuristic would have been no better is not a miss") {
  Guard g(quick());
  for (int t = 0; t < 10; ++t) g.score(1.5, 1, 2, 1);  // a burst nobody saw coming
  CHECK(trusted(g));
}

TEST_CASE("a learner whose loss is well above the heuristic's is distrusted until it recovers") {
  Guard g(quick());
  // Learner wastes 2 cores every tick; heuristic 0.1: loss ratio 20.
  for (int t = 0; t < 10; ++t) g.score(3, 1.1, 1, 10);
  auto v = g.verdict(100);
  REQUIRE(v);
  CHECK(v->find("learner loss") == 0);
  // The learner improves below the heuristic; once the hold runs out it is trusted again.
  for (int t = 0; t < 60; ++t) {
    g.score(1.05, 1.1, 1, 10);
    (void)g.verdict(100);
  }
  CHECK(trusted(g));
}

TEST_CASE("a non-finite forecast trips the guard") {
  Guard g(quick());
  g.trip_non_finite();
  auto v = g.verdict(100);
  REQUIRE(v);
  CHECK(v->find("non-finite") == 0);
}
