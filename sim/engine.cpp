#include "sim/engine.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ebb::sim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEpsilon = 1e-12;           // core-seconds: below this a backlog is empty
constexpr double kMinQuotaS = 1e-3;          // the kernel refuses a cpu.max quota under 1 ms
constexpr std::uint64_t kPage = 4096;
constexpr double kPressureWindowS = 10;      // PSI's avg10
constexpr double kMaxStall = 0.9;            // reclaim never stops a container completely

int steps(double seconds, double step) { return std::max(1, static_cast<int>(std::lround(seconds / step))); }

// cgroup files hold integers: cpu.max's quota in microseconds (rounded up, so a limit is
// never tightened by rounding) and memory limits in pages.
policy::Limits quantize(const policy::Limits& l, double period_s) {
  policy::Limits q = l;
  if (q.cpu_cores) {
    const double quota_us = std::max(kMinQuotaS, *q.cpu_cores * period_s) * 1e6;
    q.cpu_cores = std::ceil(quota_us - 1e-6) / 1e6 / period_s;
  }
  auto page = [](std::optional<std::uint64_t>& v) {
    if (v) *v = (*v + kPage - 1) / kPage * kPage;
  };
  page(q.memory_high_bytes);
  page(q.memory_max_bytes);
  return q;
}

// The per-container state, as flat arrays indexed by container: the substep loop touches a
// few of them for every container 10 times a tick.
struct State {
  explicit State(std::size_t n)
      : quota(n), quota_left(n), backlog(n), stall(n), serve(n), rate(n), served(n), arrived(n), waiting_s(n),
        throttled_s(n), periods(n), throttled_periods(n), ran(n), throttled(n), down(n), down_left(n), memory(n),
        high_events(n), max_events(n), oom_events(n), cpu_pressure(n), memory_pressure(n), limits(n) {}
  std::vector<double> quota, quota_left, backlog, stall, serve, rate;
  std::vector<double> served, arrived, waiting_s, throttled_s;  // this tick
  std::vector<int> periods, throttled_periods;                   // this tick
  std::vector<char> ran, throttled, down;                       // this period / tick
  std::vector<int> down_left;
  std::vector<std::uint64_t> memory, high_events, max_events, oom_events;
  std::vector<double> cpu_pressure, memory_pressure;  // avg10, percent
  std::vector<policy::Limits> limits;
};

struct Totals {
  double usage = 0, slack = 0, demand = 0, unserved = 0, lost = 0, memory = 0, memory_slack = 0;
  double delay_zero_weight = 0;
  std::uint64_t ooms = 0, writes = 0;
  Histogram waste, delay_ms;
};

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
  return *std::max_element(d, d + substeps_) + (*backlog_)[index_] / (substeps_ * kSubstepS);
}

double NextTick::unthrottled_cores() const {
  const float* d = cpu_->data() + index_ * static_cast<std::size_t>(substeps_);
  const int chunk = std::min(substeps_, period_steps_);
  double peak = 0, carried = (*backlog_)[index_];
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
  std::vector<float> cur_cpu(n * S), next_cpu(n * S);
  std::vector<std::uint64_t> cur_memory(n), next_memory(n);
  std::vector<NextTick> nexts;
  std::vector<std::unique_ptr<policy::ContainerController>> controllers;
  sources.reserve(n);
  nexts.reserve(n);
  controllers.reserve(n);
  State s(n);
  Totals total;
  PlotRecorder plots(w, o, ticks);

  auto generate_next = [&](bool exists) {
    for (std::size_t i = 0; i < n; ++i) {
      std::span<float> span(next_cpu.data() + i * S, static_cast<std::size_t>(S));
      if (exists) {
        next_memory[i] = sources[i]->next_tick(span);
      } else {
        std::fill(span.begin(), span.end(), 0.0f);
        next_memory[i] = 0;
      }
    }
  };

  auto apply = [&](std::size_t i, const policy::Limits& wanted) {
    const policy::Limits q = quantize(wanted, period_s);
    policy::Limits& cur = s.limits[i];
    total.writes += (q.cpu_cores != cur.cpu_cores) + (q.memory_high_bytes != cur.memory_high_bytes) +
                    (q.memory_max_bytes != cur.memory_max_bytes);
    if (q.cpu_cores != cur.cpu_cores) {
      // Writing cpu.max refills the period's runtime.
      s.quota[i] = q.cpu_cores ? *q.cpu_cores * period_s : kInf;
      s.quota_left[i] = s.quota[i];
      s.rate[i] = q.cpu_cores ? *q.cpu_cores : w.node_cpu_cores;
    }
    cur = q;
  };

  for (std::size_t i = 0; i < n; ++i) {
    const auto& spec = w.containers[i];
    sources.push_back(spec.make_source());
    nexts.emplace_back(&next_cpu, &next_memory, &s.backlog, i, S, period_steps);
    policy::ControllerParams params;
    params.node_cpu_cores = w.node_cpu_cores;
    params.node_memory_bytes = w.node_memory_bytes;
    params.tick_s = tick_s;
    params.bounds.cpu_max_cores = spec.cpu_bound_cores;
    params.bounds.memory_max_bytes = spec.memory_bound_bytes;
    PolicyView view{&spec, w.compression, &nexts[i], summaries ? &(*summaries)[i] : nullptr};
    controllers.push_back(policy.make(params, view));
    // The container starts with its declared limits, as a runtime would create it.
    s.limits[i] = quantize({spec.cpu_bound_cores, std::nullopt, spec.memory_bound_bytes}, period_s);
    s.quota[i] = s.quota_left[i] = *s.limits[i].cpu_cores * period_s;
    s.rate[i] = *s.limits[i].cpu_cores;
  }
  generate_next(ticks > 0);
  for (std::size_t i = 0; i < n; ++i) {
    policy::Observation first;
    first.interval_s = tick_s;
    first.first = true;
    first.cpu_limit_cores = s.limits[i].cpu_cores;
    first.memory_high_bytes = s.limits[i].memory_high_bytes;
    first.memory_max_bytes = s.limits[i].memory_max_bytes;
    apply(i, controllers[i]->decide(first).limits);
  }

  const std::int64_t progress_every = std::max<std::int64_t>(1, ticks / 200);
  for (std::int64_t tick = 0; tick < ticks; ++tick) {
    std::swap(cur_cpu, next_cpu);
    std::swap(cur_memory, next_memory);
    generate_next(tick + 1 < ticks);

    // Memory first: an OOM kill takes the container down for the whole tick.
    for (std::size_t i = 0; i < n; ++i) {
      s.stall[i] = 0;
      if (s.down_left[i] > 0) {
        --s.down_left[i];
        s.down[i] = 1;
        s.memory[i] = 0;
        continue;
      }
      s.down[i] = 0;
      const std::uint64_t m = cur_memory[i];
      const auto& l = s.limits[i];
      if (l.memory_max_bytes && m > *l.memory_max_bytes) {
        ++s.max_events[i];
        ++s.oom_events[i];
        ++total.ooms;
        total.lost += s.backlog[i];
        s.backlog[i] = 0;
        s.down[i] = 1;
        s.down_left[i] = restart_ticks - 1;
        s.memory[i] = 0;
        continue;
      }
      s.memory[i] = m;
      if (l.memory_high_bytes && m > *l.memory_high_bytes) {
        ++s.high_events[i];
        const double high = static_cast<double>(*l.memory_high_bytes);
        s.stall[i] = std::min(kMaxStall, (static_cast<double>(m) - high) / std::max(high, 1.0) * o.stall_gain);
      }
    }

    // CPU in 10 ms substeps: first what each container could run, then the node's share.
    for (int j = 0; j < S; ++j) {
      double wanted = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double want = s.backlog[i] + cur_cpu[i * S + j] * dt;
        const double serve = s.down[i] ? 0.0 : std::min(want * (1 - s.stall[i]), s.quota_left[i]);
        s.serve[i] = serve;
        wanted += serve;
      }
      const double share = wanted > node_step ? node_step / wanted : 1.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double arrive = cur_cpu[i * S + j] * dt;
        s.arrived[i] += arrive;
        if (s.down[i]) {
          total.unserved += arrive;
          total.lost += arrive;
          continue;
        }
        const double served = s.serve[i] * share;
        double backlog = s.backlog[i] + arrive - served;
        if (backlog < kEpsilon) backlog = 0;
        s.backlog[i] = backlog;
        s.quota_left[i] -= served;
        s.served[i] += served;
        if (arrive > 0 || served > 0) s.ran[i] = 1;
        if (backlog > 0) {
          total.unserved += std::min(arrive, backlog);
          s.waiting_s[i] += dt;
          if (s.quota_left[i] <= kEpsilon) {
            s.throttled[i] = 1;
            s.throttled_s[i] += dt;
          }
          // The work arriving now waits for the whole backlog to drain at the limit.
          total.delay_ms.add(backlog / s.rate[i] * 1e3, arrive);
        } else {
          total.delay_zero_weight += arrive;
        }
      }
      if ((tick * S + j + 1) % period_steps == 0) {
        for (std::size_t i = 0; i < n; ++i) {
          s.periods[i] += s.ran[i];
          s.throttled_periods[i] += s.throttled[i];
          s.ran[i] = s.throttled[i] = 0;
          s.quota_left[i] = s.quota[i];
        }
      }
    }

    // Observe, measure, decide.
    for (std::size_t i = 0; i < n; ++i) {
      const auto& l = s.limits[i];
      const double usage = s.served[i] / tick_s;
      const double limit = l.cpu_cores.value_or(w.node_cpu_cores);
      total.usage += usage;
      total.slack += limit - usage;
      total.demand += s.arrived[i];
      total.waste.add(std::max(0.0, limit - usage));
      const double memory = static_cast<double>(s.memory[i]);
      const double memory_limit = l.memory_max_bytes ? static_cast<double>(*l.memory_max_bytes) : node_memory;
      total.memory += memory;
      total.memory_slack += memory_limit - memory;
      if (plots.wants(i)) {
        const float* d = cur_cpu.data() + i * S;
        plots.add(i, tick, {0, *std::max_element(d, d + S), usage, limit, static_cast<double>(cur_memory[i]), memory_limit});
      }

      const double stall = s.down[i] ? 0.0 : s.stall[i];
      s.cpu_pressure[i] = s.cpu_pressure[i] * pressure_keep + (1 - pressure_keep) * 100 * s.waiting_s[i] / tick_s;
      s.memory_pressure[i] = s.memory_pressure[i] * pressure_keep + (1 - pressure_keep) * 100 * stall;

      policy::Observation ob;
      ob.interval_s = tick_s;
      ob.cpu_usage_cores = usage;
      ob.cpu_throttled_periods = s.periods[i] ? static_cast<double>(s.throttled_periods[i]) / s.periods[i] : 0.0;
      ob.cpu_throttled_s_per_s = s.throttled_s[i] / tick_s;
      ob.cpu_limit_cores = l.cpu_cores;
      ob.cpu_pressure_some_avg10 = s.cpu_pressure[i];
      ob.memory_current_bytes = s.memory[i];
      ob.memory_working_set_bytes = s.memory[i];
      ob.memory_high_bytes = l.memory_high_bytes;
      ob.memory_max_bytes = l.memory_max_bytes;
      ob.memory_high_events = s.high_events[i];
      ob.memory_max_events = s.max_events[i];
      ob.oom_kill_events = s.oom_events[i];
      ob.memory_pressure_some_avg10 = s.memory_pressure[i];
      ob.reclaim_stall_s_per_s = stall;
      apply(i, controllers[i]->decide(ob).limits);

      s.served[i] = s.arrived[i] = s.waiting_s[i] = s.throttled_s[i] = 0;
      s.periods[i] = s.throttled_periods[i] = 0;
      s.high_events[i] = s.max_events[i] = s.oom_events[i] = 0;
    }
    if (o.progress && (tick + 1) % progress_every == 0) o.progress(static_cast<double>(tick + 1) / ticks);
  }

  RunResult r;
  Metrics& m = r.metrics;
  total.delay_ms.add(0, total.delay_zero_weight);
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
