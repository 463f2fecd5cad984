#include "daemon/control/observe.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ebb::control {
namespace {

constexpr std::uint64_t kMinQuotaUsec = 1000;  // the kernel rejects smaller quotas

double seconds_between(const cgroup::Snapshot& a, const cgroup::Snapshot& b) {
  return std::chrono::duration<double>(b.taken_at - a.taken_at).count();
}

using SnapshotTime = std::chrono::steady_clock::time_point;

std::uint64_t delta(std::uint64_t before, std::uint64_t after) { return after >= before ? after - before : 0; }

std::optional<std::uint64_t> limit_or_max(const std::optional<std::uint64_t>& v) {
  if (!v || *v == cgroup::kUnlimited) return std::nullopt;
  return v;
}

}  // namespace

ProbeDelta probe_delta(const probes::CgroupCounters& previous, const probes::CgroupCounters& current,
                       double interval_s) {
  ProbeDelta d;
  if (interval_s <= 0) return d;
  d.cpu_cores = static_cast<double>(delta(previous.cpu_ns, current.cpu_ns)) / 1e9 / interval_s;
  d.reclaim_stall_s_per_s = static_cast<double>(delta(previous.reclaim_stall_ns, current.reclaim_stall_ns)) / 1e9 / interval_s;
  d.oom_kills = delta(previous.oom_kills, current.oom_kills);
  const auto window = current.runq_latency.since(previous.runq_latency);
  if (window.count > 0) d.runq_latency_p99_us = window.percentile_ns(0.99) / 1e3;
  return d;
}

policy::Observation observe(const cgroup::Snapshot* previous, const cgroup::Snapshot& current, const ProbeDelta* probe) {
  policy::Observation o;
  if (current.cpu_max && current.cpu_max->quota_usec && current.cpu_max->period_usec > 0) {
    o.cpu_limit_cores = static_cast<double>(*current.cpu_max->quota_usec) / static_cast<double>(current.cpu_max->period_usec);
  }
  if (current.cpu_pressure) o.cpu_pressure_some_avg10 = current.cpu_pressure->some.avg10;
  o.memory_current_bytes = current.memory_current.value_or(0);
  o.memory_working_set_bytes = current.memory_stat ? std::min(current.memory_stat->working_set(), o.memory_current_bytes)
                                                   : o.memory_current_bytes;
  o.memory_high_bytes = limit_or_max(current.memory_high);
  o.memory_max_bytes = limit_or_max(current.memory_max);
  if (current.memory_pressure) o.memory_pressure_some_avg10 = current.memory_pressure->some.avg10;

  const double interval = previous ? seconds_between(*previous, current) : 0;
  if (!previous || interval <= 0) {
    o.first = true;
    return o;
  }
  o.interval_s = interval;
  if (previous->cpu_stat && current.cpu_stat) {
    // Over the interval between the two reads of cpu.stat, which a ReadCadence may have carried
    // past a snapshot; snapshots that do not say when they read it use their own times.
    const bool timed = previous->cpu_stat_at != SnapshotTime{} && current.cpu_stat_at != SnapshotTime{};
    const double cpu_interval =
        timed ? std::chrono::duration<double>(current.cpu_stat_at - previous->cpu_stat_at).count() : interval;
    const auto& a = *previous->cpu_stat;
    const auto& b = *current.cpu_stat;
    if (cpu_interval > 0) {
      o.cpu_usage_cores = static_cast<double>(delta(a.usage_usec, b.usage_usec)) / 1e6 / cpu_interval;
      const auto periods = delta(a.nr_periods, b.nr_periods);
      if (periods > 0)
        o.cpu_throttled_periods = std::min(1.0, static_cast<double>(delta(a.nr_throttled, b.nr_throttled)) / periods);
      o.cpu_throttled_s_per_s = static_cast<double>(delta(a.throttled_usec, b.throttled_usec)) / 1e6 / cpu_interval;
    } else if (probe) {
      o.cpu_usage_cores = probe->cpu_cores;  // not re-read (a quiet tick): the probes' figure
    }
  }
  if (previous->memory_events && current.memory_events) {
    o.memory_high_events = delta(previous->memory_events->high, current.memory_events->high);
    o.memory_max_events = delta(previous->memory_events->max, current.memory_events->max);
    o.oom_kill_events = delta(previous->memory_events->oom_kill, current.memory_events->oom_kill);
  }
  if (probe) {
    o.runq_latency_p99_us = probe->runq_latency_p99_us;
    o.reclaim_stall_s_per_s = probe->reclaim_stall_s_per_s;
    o.oom_kill_events = std::max<std::uint64_t>(o.oom_kill_events, probe->oom_kills);
  }
  return o;
}

policy::Limits current_limits(const cgroup::Snapshot& snapshot) {
  policy::Limits l;
  if (snapshot.cpu_max && snapshot.cpu_max->quota_usec && snapshot.cpu_max->period_usec > 0) {
    l.cpu_cores = static_cast<double>(*snapshot.cpu_max->quota_usec) / snapshot.cpu_max->period_usec;
  }
  l.memory_high_bytes = limit_or_max(snapshot.memory_high);
  l.memory_max_bytes = limit_or_max(snapshot.memory_max);
  return l;
}

cgroup::Freshness tick_freshness(bool cpu_stat_moved, const probes::CgroupCounters* last_probe,
                                 const probes::CgroupCounters* probe) {
  if (!last_probe || !probe || cpu_stat_moved || probe->cpu_ns != last_probe->cpu_ns) return cgroup::Freshness::cadence;
  return cgroup::Freshness::quiet;
}

std::optional<bool> cpu_stat_moved(const cgroup::Snapshot& previous, const cgroup::Snapshot& current) {
  if (!previous.cpu_stat || !current.cpu_stat) return std::nullopt;
  if (current.cpu_stat_at != SnapshotTime{} && current.cpu_stat_at == previous.cpu_stat_at) return std::nullopt;
  const auto& a = *previous.cpu_stat;
  const auto& b = *current.cpu_stat;
  return a.usage_usec != b.usage_usec || a.nr_throttled != b.nr_throttled;
}

std::string LimitWrite::describe() const {
  switch (file) {
    case File::cpu_max: return "cpu.max=" + cgroup::format_cpu_max(cpu_max);
    case File::memory_high: return "memory.high=" + cgroup::format_memory_value(bytes);
    case File::memory_max: return "memory.max=" + cgroup::format_memory_value(bytes);
  }
  return "?";
}

namespace {

bool differs(std::optional<double> now, std::optional<double> wanted, double relative) {
  if (!now || !wanted) return now.has_value() != wanted.has_value();
  return std::fabs(*wanted - *now) > relative * std::max(*now, 1e-9);
}

bool differs_bytes(std::optional<std::uint64_t> now, std::optional<std::uint64_t> wanted) {
  if (!now || !wanted) return now.has_value() != wanted.has_value();
  const double gap = std::max(0.01 * static_cast<double>(*now), static_cast<double>(1 << 20));
  return std::fabs(static_cast<double>(*wanted) - static_cast<double>(*now)) >= gap;
}

}  // namespace

std::vector<LimitWrite> plan_writes(const cgroup::Snapshot& snapshot, const policy::Limits& wanted) {
  const policy::Limits now = current_limits(snapshot);
  std::vector<LimitWrite> writes;
  if (snapshot.cpu_max && differs(now.cpu_cores, wanted.cpu_cores, 0.01)) {
    LimitWrite w{LimitWrite::File::cpu_max};
    w.cpu_max.period_usec = snapshot.cpu_max->period_usec;
    if (wanted.cpu_cores) {
      const double quota = std::round(*wanted.cpu_cores * static_cast<double>(w.cpu_max.period_usec));
      w.cpu_max.quota_usec = std::max<std::uint64_t>(kMinQuotaUsec, static_cast<std::uint64_t>(quota));
    }
    writes.push_back(w);
  }
  const bool has_memory = snapshot.memory_max.has_value();
  const bool max_changes = has_memory && differs_bytes(now.memory_max_bytes, wanted.memory_max_bytes);
  const bool high_changes = snapshot.memory_high.has_value() && differs_bytes(now.memory_high_bytes, wanted.memory_high_bytes);
  const auto as_file_value = [](const std::optional<std::uint64_t>& v) { return v.value_or(cgroup::kUnlimited); };
  LimitWrite max_write{LimitWrite::File::memory_max, {}, as_file_value(wanted.memory_max_bytes)};
  LimitWrite high_write{LimitWrite::File::memory_high, {}, as_file_value(wanted.memory_high_bytes)};
  const bool max_rises = as_file_value(wanted.memory_max_bytes) >= as_file_value(now.memory_max_bytes);
  if (max_changes && max_rises) writes.push_back(max_write);
  if (high_changes) writes.push_back(high_write);
  if (max_changes && !max_rises) writes.push_back(max_write);
  return writes;
}

Status apply(cgroup::LimitWriter& writer, const std::string& cgroup, const LimitWrite& write) {
  switch (write.file) {
    case LimitWrite::File::cpu_max: return writer.write_cpu_max(cgroup, write.cpu_max);
    case LimitWrite::File::memory_high: return writer.write_memory_high(cgroup, write.bytes);
    case LimitWrite::File::memory_max: return writer.write_memory_max(cgroup, write.bytes);
  }
  return Error{"unknown limit file"};
}

}  // namespace ebb::control
