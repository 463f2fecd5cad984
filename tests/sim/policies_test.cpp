#include <catch2/catch.hpp>

#include <algorithm>

#include "sim/policies.h"

using namespace ebb::sim;

TEST_CASE("policies are chosen by name, every one with 'all'") {
  auto all = select_policies("all");
  REQUIRE(all);
  for (const char* name :
       {"static", "vpa", "autopilot", "escra", "autothrottle", "ebb-heuristic", "ebb", "oracle", "oracle-cfs"}) {
    INFO(name);
    CHECK(std::count_if(all->begin(), all->end(), [&](const SimPolicy& p) { return p.name == name; }) == 1);
  }
  auto two = select_policies("oracle,static");
  REQUIRE(two);
  REQUIRE(two->size() == 2);
  CHECK((*two)[0].name == "oracle");
  CHECK((*two)[1].needs_summary);

  auto unknown = select_policies("static,nope");
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message, Catch::Matchers::Contains("'nope'") && Catch::Matchers::Contains("vpa"));
  CHECK_FALSE(select_policies(""));
}
