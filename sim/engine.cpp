#include "sim/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ebb::sim {

namespace {

// The per-container steps of a tick are lambdas for reading; inlined into the loop, the
// state they share stays in registers.
#define EBB_INLINE __attribute__((always_inline))

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEpsilon = 1e-12;           // core-seconds: below this a backlog is empty
constexpr double kMinQuotaS = 1e-3;          // the kernel refuses a cpu.max quota under 1 ms
constexpr std::uint64_t kPage = 4096;
constexpr double kPressureWindowS = 10;      // PSI's avg10
constexpr double kMaxStall = 0.9;            // reclaim never stops a container completely

int steps(double seconds, double step) { return std::max(1, static_cast<int>(std::lround(seconds / step))); }

// cgroup files hold integers: cpu.max's quota in microseconds (rounded up, so a limit is
// never tightened by rounding) and memory limits in pages.
std::optional<double> quantize_cpu(const std::optional<double>& cores, double period_s) {
  if (!cores) return cores;
  const double quota_us = std::max(kMinQuotaS, *cores * period_s) * 1e6 - 1e-6;
  // Without SSE4.1's roundsd std::ceil is a long sequence; for the quotas of real limits a
  // truncation and a correction give the same value.
  double up = quota_us;
  if (quota_us < 0x1.0p52) {
    up = static_cast<double>(static_cast<std::int64_t>(quota_us));
    if (up < quota_us) up += 1;
  } else {
    up = std::ceil(quota_us);
  }
  return up / 1e6 / period_s;
}

std::optional<std::uint64_t> quantize_memory(const std::optional<std::uint64_t>& bytes) {
  if (!bytes) return bytes;
  return (*bytes + kPage - 1) / kPage * kPage;
}

// Sets a memory limit to `wanted` in pages; returns whether that changed it (a file write).
inline bool write_memory(std::optional<std::uint64_t>& limit, const std::optional<std::uint64_t>& wanted) {
  if (!wanted) {
    const bool changed = limit.has_value();
    limit.reset();
    return changed;
  }
  const std::uint64_t bytes = (*wanted + kPage - 1) / kPage * kPage;
  const bool changed = !limit || *limit != bytes;
  limit = bytes;
  return changed;
}

policy::Limits quantize(const policy::Limits& l, double period_s) {
  return {quantize_cpu(l.cpu_cores, period_s), quantize_memory(l.memory_high_bytes), quantize_memory(l.memory_max_bytes)};
}

// The CFS state of one container. The substep loop touches it 10 times a tick, so it is kept
// together and the loop runs container by container whenever the node has room for all.
struct Cfs {
  double quota = kInf, quota_left = kInf, backlog = 0, stall = 0, rate = 1;
  double served = 0, arrived = 0, unserved = 0, waiting_s = 0, throttled_s = 0;  // this tick
  int periods = 0, throttled_periods = 0;                                         // this tick
  bool ran = false, throttled = false;                                            // this period
  bool down = false;                                                              // this tick
};

// What the container would run in a substep if the node had room: its backlog and the
// arrivals, less the share reclaim stalls, within the quota left in the period.
inline double offer(const Cfs& c, double arrive) {
  return std::min((c.backlog + arrive) * (1 - c.stall), c.quota_left);
}

// Runs `served` core-seconds of the backlog and the arrivals (FIFO); what is left waits.
inline void settle(Cfs& c, double arrive, double served, double dt, Histogram& delay_ms) {
  double backlog = c.backlog + arrive - served;
  if (backlog < kEpsilon) backlog = 0;
  c.backlog = backlog;
  c.quota_left -= served;
  c.served += served;
  c.arrived += arrive;
  c.ran |= arrive > 0 || served > 0;
  if (backlog > 0) {
    c.unserved += std::min(arrive, backlog);
    c.waiting_s += dt;
    if (c.quota_left <= kEpsilon) {
      c.throttled = true;
      c.throttled_s += dt;
    }
    // The work arriving now waits for the whole backlog to drain at the limit.
    delay_ms.add(backlog / c.rate * 1e3, arrive);
  }
}

// A container down after an OOM kill: what arrives is lost.
inline void lose(Cfs& c, double arrive) {
  c.arrived += arrive;
  c.unserved += arrive;
}

inline void end_period(Cfs& c) {
  c.periods += c.ran;
  c.throttled_periods += c.throttled;
  c.ran = c.throttled = false;
  c.quota_left = c.quota;
}

// The rest of a container's state, read and written once a tick.
struct Memory {
  std::uint64_t current = 0, high_events = 0, max_events = 0, oom_events = 0;
  int down_left = 0;
  double cpu_pressure = 0, memory_pressure = 0;  // avg10, percent
};

struct Totals {
  double usage = 0, slack = 0, demand = 0, unserved = 0, memory = 0, memory_slack = 0;
  double lost = 0;             // backlogs dropped by OOM kills and demand arriving while down
  double arrived_down = 0;     // the latter alone
  std::uint64_t ooms = 0, writes = 0;
  Histogram waste, delay_ms;
};

// The largest 10 ms demand of a tick (cores), as std::max_element finds it, and its whole
// demand (core-seconds), summed in the order serve_alone() needs when the tick is one CFS
// period. N > 0 is the number of substeps known at compile time (10 at the default 100 ms
// tick): the loop is unrolled.
template <int N>
void tick_stats_n(const float* d, int substeps, float& peak, double& work) {
  if constexpr (N > 0) substeps = N;
  float p = d[0];
  double sum = 0;
  for (int j = 0; j < substeps; ++j) {
    p = std::max(p, d[j]);
    sum += d[j];
  }
  peak = p;
  work = sum * kSubstepS;
}

inline void tick_stats(const float* d, int substeps, float& peak, double& work) {
  if (substeps == 10) {
    tick_stats_n<10>(d, substeps, peak, work);
  } else {
    tick_stats_n<0>(d, substeps, peak, work);
  }
}

class PlotRecorder {
 public:
  PlotRecorder(const Workload& w, const EngineOptions& o, std::int64_t ticks)
      : slot_(w.containers.size(), -1),
        bucket_ticks_(std::max<std::int64_t>(1, (ticks + o.plot_points - 1) / std::max(1, o.plot_points))),
        tick_s_(o.tick_s) {
    for (std::size_t c : o.plot_containers) {
      if (c >= w.containers.size() || slot_[c] >= 0) continue;
      slot_[c] = static_cast<int>(series_.size());
      series_.push_back({w.containers[c].name, {}});
      open_.emplace_back();
    }
  }
  bool wants(std::size_t c) const { return slot_[c] >= 0; }
  void add(std::size_t c, std::int64_t tick, const PlotPoint& p) {
    auto& acc = open_[static_cast<std::size_t>(slot_[c])];
    acc.demand_peak = std::max(acc.demand_peak, p.demand_peak);
    acc.usage += p.usage / static_cast<double>(bucket_ticks_);
    acc.cpu_limit = std::max(acc.cpu_limit, p.cpu_limit);
    acc.memory = std::max(acc.memory, p.memory);
    acc.memory_max = std::max(acc.memory_max, p.memory_max);
    if ((tick + 1) % bucket_ticks_ == 0) {
      acc.t_s = static_cast<double>(tick + 1 - bucket_ticks_) * tick_s_;
      series_[static_cast<std::size_t>(slot_[c])].points.push_back(acc);
      acc = {};
    }
  }
  std::vector<PlotSeries> take() { return std::move(series_); }

 private:
  std::vector<int> slot_;
  std::vector<PlotSeries> series_;
  std::vector<PlotPoint> open_;
  std::int64_t bucket_ticks_;
  double tick_s_;
};

}  // namespace

double NextTick::peak_cores() const {
  const float* d = cpu_->data() + index_ * static_cast<std::size_t>(substeps_);
  const float peak = peaks_ ? (*peaks_)[index_] : *std::max_element(d, d + substeps_);
  return peak + *backlog_ / (substeps_ * kSubstepS);
}

double NextTick::unthrottled_cores() const {
  const float* d = cpu_->data() + index_ * static_cast<std::size_t>(substeps_);
  const int chunk = std::min(substeps_, period_steps_);
  double peak = 0, carried = *backlog_;
  for (int start = 0; start < substeps_; start += chunk) {
    double work = carried;
    for (int j = start; j < std::min(substeps_, start + chunk); ++j) work += d[j] * kSubstepS;
    peak = std::max(peak, work / (chunk * kSubstepS));
    carried = 0;
  }
  return peak;
}

std::vector<TraceSummary> survey(const Workload& w, double tick_s) {
  const int substeps = steps(tick_s, kSubstepS);
  const auto ticks = static_cast<std::int64_t>(std::llround(w.duration_s / tick_s));
  std::vector<TraceSummary> out(w.containers.size());
  std::vector<float> cpu(static_cast<std::size_t>(substeps));
  for (std::size_t c = 0; c < w.containers.size(); ++c) {
    auto source = w.containers[c].make_source();
    for (std::int64_t t = 0; t < ticks; ++t) {
      const std::uint64_t memory = source->next_tick(cpu);
      double sum = 0;
      for (float v : cpu) sum += v;
      out[c].tick_cpu_cores.add(sum / substeps);
      out[c].peak_memory_bytes = std::max(out[c].peak_memory_bytes, memory);
    }
  }
  return out;
}

RunResult run(const Workload& w, const SimPolicy& policy, const EngineOptions& o,
              const std::vector<TraceSummary>* summaries) {
  const std::size_t n = w.containers.size();
  const int S = steps(o.tick_s, kSubstepS);
  const int period_steps = steps(o.cfs_period_s, kSubstepS);
  const double dt = kSubstepS;
  const double tick_s = S * dt;
  const double period_s = period_steps * dt;
  const auto ticks = static_cast<std::int64_t>(std::llround(w.duration_s / tick_s));
  const int restart_ticks = steps(o.restart_s, tick_s);
  const double node_step = w.node_cpu_cores * dt;
  const double node_memory = static_cast<double>(w.node_memory_bytes);
  const double pressure_keep = std::exp(-tick_s / kPressureWindowS);

  std::vector<std::unique_ptr<DemandSource>> sources;
  // Two ticks of demand: the one being served (cur) and the next, which the oracle may see.
  std::vector<float> cur_cpu(n * S), next_cpu(n * S);
  std::vector<std::uint64_t> cur_memory(n), next_memory(n);
  std::vector<float> cur_peak(n), next_peak(n);   // the largest 10 ms demand of the tick
  std::vector<double> cur_work(n), next_work(n);  // the tick's demand, core-seconds
  std::vector<NextTick> nexts;
  std::vector<std::unique_ptr<policy::ContainerController>> controllers;
  sources.reserve(n);
  nexts.reserve(n);
  controllers.reserve(n);
  std::vector<Cfs> cfs(n);
  std::vector<Memory> mem(n);
  std::vector<policy::Limits> limits(n);
  std::vector<double> serve(n);
  std::vector<double> oom_lost;  // backlogs dropped by this tick's OOM kills, added to the total in order
  oom_lost.reserve(n);
  std::vector<char> period_ends(static_cast<std::size_t>(S));
  std::vector<std::pair<int, int>> chunks;  // [first, last] substeps of each period inside the tick
  Totals total;
  PlotRecorder plots(w, o, ticks);

  // The next tick's demand of container i.
  auto generate = [&](std::size_t i, bool exists) EBB_INLINE {
    float* d = next_cpu.data() + i * S;
    if (exists) {
      next_memory[i] = sources[i]->next_tick(std::span<float>(d, static_cast<std::size_t>(S)));
    } else {
      std::fill(d, d + S, 0.0f);
      next_memory[i] = 0;
    }
    tick_stats(d, S, next_peak[i], next_work[i]);
  };

  // Writes what changed of `wanted`, rounded as the cgroup files hold it, to container i.
  auto apply = [&](std::size_t i, const policy::Limits& wanted) EBB_INLINE {
    policy::Limits& cur = limits[i];
    const std::optional<double> cpu = quantize_cpu(wanted.cpu_cores, period_s);
    if (cpu.has_value() != cur.cpu_cores.has_value() || (cpu && *cpu != *cur.cpu_cores)) {
      ++total.writes;
      // Writing cpu.max refills the period's runtime.
      cfs[i].quota = cfs[i].quota_left = cpu ? *cpu * period_s : kInf;
      cfs[i].rate = cpu ? *cpu : w.node_cpu_cores;
      cur.cpu_cores = cpu;
    }
    total.writes += write_memory(cur.memory_high_bytes, wanted.memory_high_bytes);
    total.writes += write_memory(cur.memory_max_bytes, wanted.memory_max_bytes);
  };

  // Memory of the next tick, under the limits just decided: an OOM kill takes the container
  // down for the whole tick. Returns the most the container could run in one substep of it,
  // to know whether the node can hold everyone.
  auto admit = [&](std::size_t i) EBB_INLINE {
    Cfs& c = cfs[i];
    Memory& m = mem[i];
    c.stall = 0;
    c.down = true;
    m.current = 0;
    if (m.down_left > 0) {
      --m.down_left;
      return 0.0;
    }
    const std::uint64_t demand = next_memory[i];
    const auto& l = limits[i];
    if (l.memory_max_bytes && demand > *l.memory_max_bytes) {
      ++m.max_events;
      ++m.oom_events;
      ++total.ooms;
      oom_lost.push_back(c.backlog);
      c.backlog = 0;
      m.down_left = restart_ticks - 1;
      return 0.0;
    }
    c.down = false;
    m.current = demand;
    if (l.memory_high_bytes && demand > *l.memory_high_bytes) {
      ++m.high_events;
      const double high = static_cast<double>(*l.memory_high_bytes);
      c.stall = std::min(kMaxStall, (static_cast<double>(demand) - high) / std::max(high, 1.0) * o.stall_gain);
    }
    // The quota may refill within the tick.
    return std::min(c.quota, c.backlog + std::max(0.0f, next_peak[i]) * dt);
  };
  auto flush_oom_lost = [&] {
    for (double lost : oom_lost) total.lost += lost;
    oom_lost.clear();
  };

  // The node has room for everyone: container i on its own, a CFS period (or the part of it
  // inside this tick) at a time.
  auto serve_alone = [&](std::size_t i) EBB_INLINE {
    Cfs& c = cfs[i];
    const float* d = cur_cpu.data() + i * S;
    for (const auto& [start, last] : chunks) {
      double work = cur_work[i];
      if (chunks.size() > 1) {
        work = 0;
        for (int j = start; j <= last; ++j) work += d[j];
        work *= dt;
      }
      if (!c.down && c.backlog == 0 && c.stall == 0 && work <= c.quota_left) {
        // Nothing waits: every substep's demand runs as it arrives, as settle() would.
        c.quota_left -= work;
        c.served += work;
        c.arrived += work;
        c.ran |= work > 0;
      } else {
        for (int j = start; j <= last; ++j) {
          const double arrive = d[j] * dt;
          if (c.down) {
            lose(c, arrive);
          } else {
            settle(c, arrive, offer(c, arrive), dt, total.delay_ms);
          }
        }
      }
      if (period_ends[last]) end_period(c);
    }
  };

  // Contention: each substep, the node's CPUs are shared in proportion to what each container
  // could run.
  auto serve_shared = [&] {
    for (int j = 0; j < S; ++j) {
      double wanted = 0;
      for (std::size_t i = 0; i < n; ++i) {
        serve[i] = cfs[i].down ? 0.0 : offer(cfs[i], cur_cpu[i * S + j] * dt);
        wanted += serve[i];
      }
      const double share = wanted > node_step ? node_step / wanted : 1.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double arrive = cur_cpu[i * S + j] * dt;
        if (cfs[i].down) {
          lose(cfs[i], arrive);
        } else {
          settle(cfs[i], arrive, serve[i] * share, dt, total.delay_ms);
        }
        if (period_ends[j]) end_period(cfs[i]);
      }
    }
  };

  // One Observation and one Decision, rewritten for every container: the fields that do not
  // change are set once, and the decision's strings keep their buffers.
  policy::Observation ob;
  ob.interval_s = tick_s;
  policy::Decision decision;

  // Observe, measure, decide container i after tick `tick`.
  auto observe = [&](std::size_t i, std::int64_t tick) EBB_INLINE {
    Cfs& c = cfs[i];
    Memory& m = mem[i];
    const auto& l = limits[i];
    const double usage = c.served / tick_s;
    const double limit = l.cpu_cores.value_or(w.node_cpu_cores);
    total.usage += usage;
    total.slack += limit - usage;
    total.demand += c.arrived;
    total.unserved += c.unserved;
    if (c.down) {
      total.lost += c.arrived;
      total.arrived_down += c.arrived;
    }
    total.waste.add(std::max(0.0, limit - usage));
    const double memory = static_cast<double>(m.current);
    const double memory_limit = l.memory_max_bytes ? static_cast<double>(*l.memory_max_bytes) : node_memory;
    total.memory += memory;
    total.memory_slack += memory_limit - memory;
    if (plots.wants(i)) {
      plots.add(i, tick, {0, cur_peak[i], usage, limit, static_cast<double>(cur_memory[i]), memory_limit});
    }

    m.cpu_pressure = m.cpu_pressure * pressure_keep + (1 - pressure_keep) * 100 * c.waiting_s / tick_s;
    m.memory_pressure = m.memory_pressure * pressure_keep + (1 - pressure_keep) * 100 * c.stall;

    ob.cpu_usage_cores = usage;
    ob.cpu_throttled_periods = c.periods ? static_cast<double>(c.throttled_periods) / c.periods : 0.0;
    ob.cpu_throttled_s_per_s = c.throttled_s / tick_s;
    ob.cpu_limit_cores = l.cpu_cores;
    ob.cpu_pressure_some_avg10 = m.cpu_pressure;
    ob.memory_current_bytes = m.current;
    ob.memory_working_set_bytes = m.current;
    ob.memory_high_bytes = l.memory_high_bytes;
    ob.memory_max_bytes = l.memory_max_bytes;
    ob.memory_high_events = m.high_events;
    ob.memory_max_events = m.max_events;
    ob.oom_kill_events = m.oom_events;
    ob.memory_pressure_some_avg10 = m.memory_pressure;
    ob.reclaim_stall_s_per_s = c.stall;
    controllers[i]->decide_into(ob, decision);
    apply(i, decision.limits);

    c.served = c.arrived = c.unserved = c.waiting_s = c.throttled_s = 0;
    c.periods = c.throttled_periods = 0;
    m.high_events = m.max_events = m.oom_events = 0;
  };

  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = w.containers[i];
    sources.push_back(spec.make_source());
    nexts.emplace_back(&next_cpu, &next_memory, &cfs[i].backlog, i, S, period_steps, &next_peak);
    policy::ControllerParams params;
    params.node_cpu_cores = w.node_cpu_cores;
    params.node_memory_bytes = w.node_memory_bytes;
    params.tick_s = tick_s;
    params.bounds.cpu_max_cores = spec.cpu_bound_cores;
    params.bounds.memory_max_bytes = spec.memory_bound_bytes;
    PolicyView view{&spec, w.compression, &nexts[i], summaries ? &(*summaries)[i] : nullptr};
    controllers.push_back(policy.make(params, view));
    // The container starts with its declared limits, as a runtime would create it.
    limits[i] = quantize({spec.cpu_bound_cores, std::nullopt, spec.memory_bound_bytes}, period_s);
    cfs[i].quota = cfs[i].quota_left = *limits[i].cpu_cores * period_s;
    cfs[i].rate = *limits[i].cpu_cores;
  }
  for (std::size_t i = 0; i < n; ++i) generate(i, ticks > 0);
  for (std::size_t i = 0; i < n; ++i) {
    policy::Observation first;
    first.interval_s = tick_s;
    first.first = true;
    first.cpu_limit_cores = limits[i].cpu_cores;
    first.memory_high_bytes = limits[i].memory_high_bytes;
    first.memory_max_bytes = limits[i].memory_max_bytes;
    apply(i, controllers[i]->decide(first).limits);
  }
  double reach = 0;
  for (std::size_t i = 0; i < n; ++i) reach += admit(i);
  flush_oom_lost();

  // Each tick: CPU of the whole tick in 10 ms substeps (with the memory state admit() set),
  // then, container by container while its state is in cache: the demand of the tick after,
  // serving this tick when the node has room for all, observing and deciding, and admitting
  // the tick after under the new limits.
  const std::int64_t progress_every = std::max<std::int64_t>(1, ticks / 200);
  for (std::int64_t tick = 0; tick < ticks; ++tick) {
    std::swap(cur_cpu, next_cpu);
    std::swap(cur_memory, next_memory);
    std::swap(cur_peak, next_peak);
    std::swap(cur_work, next_work);
    chunks.clear();
    for (int j = 0, first = 0; j < S; ++j) {
      period_ends[j] = (tick * S + j + 1) % period_steps == 0;
      if (period_ends[j] || j == S - 1) {
        chunks.emplace_back(first, j);
        first = j + 1;
      }
    }
    const bool shared = reach > node_step;
    if (shared) serve_shared();
    reach = 0;
    const bool more = tick + 1 < ticks;
    for (std::size_t i = 0; i < n; ++i) {
      generate(i, more);
      if (!shared) serve_alone(i);
      observe(i, tick);
      reach += admit(i);
    }
    flush_oom_lost();
    if (o.progress && (tick + 1) % progress_every == 0) o.progress(static_cast<double>(tick + 1) / ticks);
  }

  RunResult r;
  Metrics& m = r.metrics;
  // Work that found no backlog waited 0 ms; lost work never ran and has no delay.
  total.delay_ms.add(0, total.demand - total.arrived_down - total.delay_ms.total());
  m.relative_slack = total.usage > 0 ? total.slack / total.usage : 0;
  m.waste_p50 = total.waste.percentile(50);
  m.waste_p99 = total.waste.percentile(99);
  m.throttled_fraction = total.demand > 0 ? total.unserved / total.demand : 0;
  m.delay_p99_ms = total.delay_ms.percentile(99);
  m.oom_kills = total.ooms;
  m.mem_relative_slack = total.memory > 0 ? total.memory_slack / total.memory : 0;
  const double container_minutes = static_cast<double>(n) * static_cast<double>(ticks) * tick_s / 60;
  m.limit_writes_per_min = container_minutes > 0 ? static_cast<double>(total.writes) / container_minutes : 0;
  m.lost_core_s = total.lost;
  r.plots = plots.take();
  return r;
}

}  // namespace ebb::sim
