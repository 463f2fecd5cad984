#include <catch2/catch.hpp>

#include <numeric>

#include "sim/engine.h"
#include "sim/synthetic.h"

using namespace ebb::sim;

namespace {
// Mean CPU and peak memory of a container over a run.
std::pair<double, std::uint64_t> profile(const ContainerSpec& c, int ticks) {
  auto source = c.make_source();
  std::vector<float> cpu(10);
  double sum = 0;
  std::uint64_t peak = 0;
  for (int t = 0; t < ticks; ++t) {
    peak = std::max(peak, source->next_tick(cpu));
    sum += std::accumulate(cpu.begin(), cpu.end(), 0.0) / 10;
  }
  return {sum / ticks, peak};
}
}  // namespace

TEST_CASE("every synthetic kind stays within its declared bounds and is seeded") {
  SyntheticOptions o;
  o.containers = 4;
  o.duration_s = 60;
  for (const auto& name : synthetic_kind_names()) {
    const auto w = synthetic_workload(name, o);
    REQUIRE(w.containers.size() == 4);
    CHECK(w.node_cpu_cores > 0);
    for (const auto& c : w.containers) {
      const auto [mean, peak] = profile(c, 600);
      INFO(name << " " << c.name);
      CHECK(mean > 0);
      CHECK(mean < c.cpu_bound_cores);
      CHECK(peak <= c.memory_bound_bytes);
    }
  }
  const auto a = synthetic_workload("onoff", o), b = synthetic_workload("onoff", o);
  CHECK(profile(a.containers[1], 100) == profile(b.containers[1], 100));
  o.seed = 7;
  CHECK(profile(synthetic_workload("onoff", o).containers[1], 100) != profile(a.containers[1], 100));
}

TEST_CASE("the leak grows memory and mixed cycles through the kinds") {
  SyntheticOptions o;
  o.containers = 9;
  o.duration_s = 100;
  const auto leak = synthetic_workload("leak", o);
  auto source = leak.containers[0].make_source();
  std::vector<float> cpu(10);
  const auto start = source->next_tick(cpu);
  std::uint64_t end = 0;
  for (int t = 1; t < 1000; ++t) end = source->next_tick(cpu);
  CHECK(static_cast<double>(end) > 2.5 * static_cast<double>(start));
  const auto mixed = synthetic_workload("mixed", o);
  CHECK(mixed.containers[0].name == "steady-0");
  CHECK(mixed.containers[7].name == "memspike-7");
  CHECK(mixed.containers[8].name == "steady-8");
  CHECK_FALSE(parse_synthetic_kind("nonsense"));
}
