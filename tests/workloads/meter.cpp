// ebb-meter: samples cgroups for a while and prints, per cgroup, one tab-separated line:
//   name avg_cpu_limit avg_cpu_usage cpu_slack throttled_s throttled_pct avg_mem_headroom_mb
//   peak_mem_mb oom_kills
// "max" limits count as the node's CPUs / memory: an unlimited container wastes all of it.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "daemon/cgroup/cgroup.h"

namespace {

struct Totals {
  double limit_cores = 0, usage_cores = 0, headroom_mb = 0, peak_mb = 0;
  int samples = 0;
  std::optional<ebb::cgroup::Snapshot> first, previous;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebb-meter: CPU slack, throttling, memory headroom and OOM kills of cgroups over a while", "ebb-meter"};
  std::string root = "/sys/fs/cgroup";
  std::vector<std::string> cgroups;
  double seconds = 15, interval = 0.5;
  app.add_option("--cgroup-root", root, "cgroup v2 mount point");
  app.add_option("--seconds", seconds, "how long to sample")->check(CLI::PositiveNumber);
  app.add_option("--interval", interval, "seconds between samples")->check(CLI::PositiveNumber);
  app.add_option("cgroups", cgroups, "cgroups relative to the root")->required();
  CLI11_PARSE(app, argc, argv);

  const double node_cpus = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
  const double node_mb = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1048576.0;
  ebb::cgroup::CgroupFs fs(root);
  std::vector<Totals> totals(cgroups.size());
  const auto start = std::chrono::steady_clock::now();
  auto next = start;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    for (std::size_t i = 0; i < cgroups.size(); ++i) {
      auto s = fs.snapshot(cgroups[i]);
      if (!s) {
        std::fprintf(stderr, "ebb-meter: %s\n", s.error().to_string().c_str());
        return 1;
      }
      auto& t = totals[i];
      if (t.previous && s->cpu_stat && t.previous->cpu_stat) {
        const double dt = std::chrono::duration<double>(s->taken_at - t.previous->taken_at).count();
        const auto& q = s->cpu_max;
        t.limit_cores += q && q->quota_usec ? static_cast<double>(*q->quota_usec) / q->period_usec : node_cpus;
        t.usage_cores += static_cast<double>(s->cpu_stat->usage_usec - t.previous->cpu_stat->usage_usec) / 1e6 / dt;
        const double current_mb = static_cast<double>(s->memory_current.value_or(0)) / 1048576.0;
        const auto max = s->memory_max.value_or(ebb::cgroup::kUnlimited);
        const double max_mb = max == ebb::cgroup::kUnlimited ? node_mb : static_cast<double>(max) / 1048576.0;
        t.headroom_mb += max_mb - current_mb;
        t.peak_mb = std::max(t.peak_mb, current_mb);
        ++t.samples;
      }
      if (!t.first) t.first = *s;
      t.previous = *s;
    }
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(interval));
    std::this_thread::sleep_until(next);
  }
  for (std::size_t i = 0; i < cgroups.size(); ++i) {
    const auto& t = totals[i];
    const double n = std::max(1, t.samples);
    const auto& a = *t.first->cpu_stat;
    const auto& b = *t.previous->cpu_stat;
    const double periods = static_cast<double>(b.nr_periods - a.nr_periods);
    const auto oom = [](const ebb::cgroup::Snapshot& s) { return s.memory_events ? s.memory_events->oom_kill : 0; };
    std::printf("%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%.0f\t%llu\n", cgroups[i].c_str(), t.limit_cores / n,
                t.usage_cores / n, (t.limit_cores - t.usage_cores) / n, static_cast<double>(b.throttled_usec - a.throttled_usec) / 1e6,
                periods > 0 ? 100.0 * static_cast<double>(b.nr_throttled - a.nr_throttled) / periods : 0.0,
                t.headroom_mb / n, t.peak_mb, static_cast<unsigned long long>(oom(*t.previous) - oom(*t.first)));
  }
  return 0;
}
