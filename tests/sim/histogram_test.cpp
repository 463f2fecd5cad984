#include <catch2/catch.hpp>

#include "sim/histogram.h"

using ebb::sim::Histogram;

TEST_CASE("histogram percentiles are within a bucket (0.8%) of the exact answer") {
  Histogram h;
  for (int i = 1; i <= 100; ++i) h.add(i);
  CHECK(h.percentile(50) == Approx(50).epsilon(0.008));
  CHECK(h.percentile(99) == Approx(99).epsilon(0.008));
  CHECK(h.percentile(100) == Approx(100).epsilon(0.008));
  CHECK(h.total() == 100);
}

TEST_CASE("histogram: weights, zeros, and an empty histogram") {
  Histogram h;
  CHECK(h.percentile(50) == 0);
  h.add(0, 3);
  h.add(10, 1);
  CHECK(h.percentile(75) == 0);  // 3 of 4 are zeros
  CHECK(h.percentile(76) == Approx(10).epsilon(0.008));
  h.add(5, 0);  // no weight, no effect
  CHECK(h.total() == 4);
  Histogram other;
  other.add(1e9);  // beyond the range: counts in the top bucket
  h.merge(other);
  CHECK(h.percentile(100) > 5e5);
}
