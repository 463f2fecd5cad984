// Every cgroup v2 file parser on the same bytes: a mutated cpu.stat seed also reaches the
// pressure and memory.stat parsers, and coverage guides each. Beyond not crashing, a parsed
// value must obey the contract the engine relies on.
#include <cstdlib>

#include "daemon/cgroup/cgroup.h"
#include "tests/fuzz/fuzz.h"

using namespace ebb;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = fuzz::as_text(data, size);
  (void)cgroup::parse_cpu_stat(text);
  (void)cgroup::parse_memory_events(text);
  (void)cgroup::parse_memory_stat(text);
  (void)cgroup::parse_pressure(text);
  (void)cgroup::parse_controllers(text);
  (void)cgroup::parse_memory_value(text);
  // cpu.max: the engine divides by the period.
  if (const auto max = cgroup::parse_cpu_max(text); max && max->period_usec == 0) std::abort();
  // cpu.weight: the kernel's range is 1..10000; the arbitration divides by weights.
  if (const auto weight = cgroup::parse_cpu_weight(text); weight && (*weight < 1 || *weight > 10000)) std::abort();
  return 0;
}
