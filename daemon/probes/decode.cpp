#include "daemon/probes/decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace ebb::probes {

CgroupCounters sum_per_cpu(std::span<const ebb_cgroup_stats> per_cpu) {
  CgroupCounters total;
  for (const auto& cpu : per_cpu) {
    total.cpu_ns += cpu.cpu_ns;
    total.runq_latency.count += cpu.runq_count;
    total.runq_latency.sum_ns += cpu.runq_sum_ns;
    for (int i = 0; i < kLatencyBuckets; ++i) total.runq_latency.buckets[i] += cpu.runq_buckets[i];
    total.involuntary_switches += cpu.involuntary_switches;
    total.reclaim_stall_ns += cpu.reclaim_stall_ns;
    total.oom_kills += cpu.oom_kills;
    total.throttle_episodes += cpu.throttle_episodes;
  }
  return total;
}

Result<Event> decode_event(std::span<const std::byte> record) {
  ebb_event raw;
  if (record.size() < sizeof(raw)) {
    return Error{"ring-buffer record of " + std::to_string(record.size()) + " bytes, expected " +
                 std::to_string(sizeof(raw))};
  }
  std::memcpy(&raw, record.data(), sizeof(raw));
  Event event{};
  switch (raw.kind) {
    case EBB_EVENT_OOM_KILL: event.kind = Event::Kind::oom_kill; break;
    case EBB_EVENT_RUNQ_LATENCY: event.kind = Event::Kind::runq_latency; break;
    case EBB_EVENT_RECLAIM_STALL: event.kind = Event::Kind::reclaim_stall; break;
    case EBB_EVENT_THROTTLED: event.kind = Event::Kind::throttled; break;
    default: return Error{"ring-buffer record of unknown kind " + std::to_string(raw.kind)};
  }
  event.cgroup_id = raw.cgroup_id;
  event.value_ns = raw.value_ns;
  event.timestamp_ns = raw.timestamp_ns;
  return event;
}

LatencyHistogram LatencyHistogram::since(const LatencyHistogram& earlier) const {
  const auto delta = [](std::uint64_t before, std::uint64_t after) { return after >= before ? after - before : 0; };
  LatencyHistogram window;
  for (int i = 0; i < kLatencyBuckets; ++i) window.buckets[i] = delta(earlier.buckets[i], buckets[i]);
  window.count = delta(earlier.count, count);
  window.sum_ns = delta(earlier.sum_ns, sum_ns);
  return window;
}

double LatencyHistogram::percentile_ns(double q) const {
  std::uint64_t total = 0;
  for (auto n : buckets) total += n;
  if (total == 0) return 0;
  // The rank of the quantile among `total` samples, at least the first one.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total))));
  std::uint64_t seen = 0;
  for (int i = 0; i < kLatencyBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return std::ldexp(1.0, i + 1);
  }
  return std::ldexp(1.0, kLatencyBuckets);
}

bool lists_function(std::string_view available_filter_functions, std::string_view function) {
  std::size_t pos = 0;
  while (pos < available_filter_functions.size()) {
    auto end = available_filter_functions.find('\n', pos);
    if (end == std::string_view::npos) end = available_filter_functions.size();
    const auto line = available_filter_functions.substr(pos, end - pos);
    // "name" or "name [module]"
    if (line.substr(0, line.find(' ')) == function) return true;
    pos = end + 1;
  }
  return false;
}

std::string describe(const std::vector<ProbeStatus>& status) {
  std::string on, off;
  for (const auto& probe : status) {
    if (probe.attached) {
      on += (on.empty() ? "" : ", ") + probe.name;
    } else {
      off += (off.empty() ? "" : "; ") + probe.name + ": " + probe.detail;
    }
  }
  return "active: " + (on.empty() ? std::string("none") : on) + (off.empty() ? "" : "; inactive: " + off);
}

const char* to_string(Event::Kind kind) {
  switch (kind) {
    case Event::Kind::oom_kill: return "oom_kill";
    case Event::Kind::runq_latency: return "runq_latency";
    case Event::Kind::reclaim_stall: return "reclaim_stall";
    case Event::Kind::throttled: return "throttled";
  }
  return "unknown";
}

}  // namespace ebb::probes
