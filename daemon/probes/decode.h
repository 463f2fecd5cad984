#pragma once
// Pure translation from the kernel side's layouts (bpf/probes_abi.h) to the public types, so
// it can be tested with recorded map values and ring-buffer records, without a kernel.
#include <cstddef>
#include <span>
#include <string_view>

#include "bpf/probes_abi.h"
#include "daemon/common/error.h"
#include "daemon/probes/probes.h"

namespace ebb::probes {

static_assert(kLatencyBuckets == EBB_LATENCY_BUCKETS);
// Per-CPU map values are copied out at 8-byte strides; the struct must need no padding.
static_assert(sizeof(ebb_cgroup_stats) % 8 == 0);

// Sums the per-CPU copies of one cgroup's counters, as one lookup in the per-CPU map returns them.
CgroupCounters sum_per_cpu(std::span<const ebb_cgroup_stats> per_cpu);

// One ring-buffer record; an Error for a short record or a kind this build does not know.
Result<Event> decode_event(std::span<const std::byte> record);

// Whether tracefs' available_filter_functions ("name" or "name [module]" per line) lists
// `function`, i.e. whether a kprobe on it can attach.
bool lists_function(std::string_view available_filter_functions, std::string_view function);

}  // namespace ebb::probes
