// A plain loop for instruction counts: `learner_cost CONTAINERS TICKS` warms CONTAINERS
// learners past their cold start, then runs TICKS ticks over all of them. Under callgrind the
// instructions of one decision are (Ir(TICKS = b) - Ir(TICKS = a)) / ((b - a) x CONTAINERS),
// which cancels set-up and warm-up; docs/learner.md has the commands.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "bench/learner/workload.h"
#include "daemon/learner/learner.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CONTAINERS TICKS\n", argv[0]);
    return 2;
  }
  const int containers = std::atoi(argv[1]), ticks = std::atoi(argv[2]);
  const auto fleet = ebb::bench::make_fleet(containers, 3);
  const auto factory = ebb::learner::learner_factory();
  std::vector<std::unique_ptr<ebb::policy::ContainerController>> cs;
  for (int i = 0; i < containers; ++i) cs.push_back(factory(fleet.params));

  double checksum = 0;
  const int warmup = ebb::bench::kRing;
  for (int t = 0; t < warmup + ticks; ++t)
    for (int i = 0; i < containers; ++i)
      checksum += cs[static_cast<std::size_t>(i)]
                      ->decide(fleet.rings[static_cast<std::size_t>(i)][static_cast<std::size_t>(t % ebb::bench::kRing)])
                      .limits.cpu_cores.value_or(0);
  std::printf("containers %d ticks %d checksum %.6f\n", containers, ticks, checksum);
  return 0;
}
