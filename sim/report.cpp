#include "sim/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace ebb::sim {

std::string results_csv(const std::vector<ResultRow>& rows) {
  std::string out =
      "workload,policy,relative_slack,waste_p50,waste_p99,throttled_fraction,delay_p99_ms,oom_kills,"
      "mem_relative_slack,limit_writes_per_min\n";
  for (const auto& r : rows) {
    const auto& m = r.metrics;
    out += fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g},{},{:.6g},{:.6g}\n", r.workload, r.policy,
                       m.relative_slack, m.waste_p50, m.waste_p99, m.throttled_fraction, m.delay_p99_ms, m.oom_kills,
                       m.mem_relative_slack, m.limit_writes_per_min);
  }
  return out;
}

std::string summary_markdown(const std::vector<ResultRow>& rows, const std::string& preamble) {
  std::string out = preamble;
  std::vector<std::string> workloads;
  for (const auto& r : rows)
    if (std::find(workloads.begin(), workloads.end(), r.workload) == workloads.end()) workloads.push_back(r.workload);
  for (const auto& w : workloads) {
    out += fmt::format(
        "\n### {}\n\n| policy | relative slack | waste p50 (cores) | waste p99 (cores) | throttled | delay p99 (ms) "
        "| OOM kills | memory slack | writes/min |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        w);
    for (const auto& r : rows) {
      if (r.workload != w) continue;
      const auto& m = r.metrics;
      out += fmt::format("| {} | {:.3f} | {:.3f} | {:.3f} | {:.2f}% | {:.1f} | {} | {:.3f} | {:.1f} |\n", r.policy,
                         m.relative_slack, m.waste_p50, m.waste_p99, 100 * m.throttled_fraction, m.delay_p99_ms,
                         m.oom_kills, m.mem_relative_slack, m.limit_writes_per_min);
    }
  }
  return out;
}

namespace {

constexpr double kWidth = 760, kPanel = 200, kLeft = 60, kTop = 30, kGap = 40;
const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// One panel: demand as a grey area, each policy's limit as a coloured line. The y axis stops
// at 1.5x the demand's peak so that a policy far above it does not flatten everything else.
std::string panel(const std::vector<PlotLine>& lines, double top, const char* unit, double scale,
                  double PlotPoint::*demand, double PlotPoint::*limit) {
  const auto& first = lines.front().series.points;
  double t_max = 0, peak = 0;
  for (const auto& p : first) {
    t_max = std::max(t_max, p.t_s);
    peak = std::max(peak, p.*demand);
  }
  const double y_max = std::max(peak * 1.5, 1e-9);
  auto x = [&](double t) { return kLeft + (kWidth - kLeft - 10) * (t_max > 0 ? t / t_max : 0); };
  auto y = [&](double v) { return top + kPanel * (1 - std::min(v, y_max) / y_max); };
  std::string out = fmt::format(
      "<rect x='{}' y='{}' width='{}' height='{}' fill='none' stroke='#999'/>\n"
      "<text x='5' y='{:.0f}' font-size='11'>{:.3g} {}</text><text x='5' y='{:.0f}' font-size='11'>0</text>\n"
      "<text x='{:.0f}' y='{:.0f}' font-size='11' text-anchor='end'>{:.0f} s</text>\n",
      kLeft, top, kWidth - kLeft - 10, kPanel, top + 10, y_max / scale, unit, top + kPanel, kWidth - 10,
      top + kPanel + 14, t_max);
  std::string area = fmt::format("{:.0f},{:.0f}", x(0), y(0));
  for (const auto& p : first) area += fmt::format(" {:.0f},{:.0f}", x(p.t_s), y(p.*demand));
  area += fmt::format(" {:.0f},{:.0f}", x(t_max), y(0));
  out += fmt::format("<polygon points='{}' fill='#ccc'/>\n", area);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string pts;
    for (const auto& p : lines[i].series.points) pts += fmt::format("{:.0f},{:.0f} ", x(p.t_s), y(p.*limit));
    out += fmt::format("<polyline points='{}' fill='none' stroke='{}' stroke-width='1'/>\n", pts,
                       kColors[i % std::size(kColors)]);
  }
  return out;
}

}  // namespace

std::string plot_svg(const std::string& title, const std::vector<PlotLine>& lines) {
  const double height = kTop + 2 * kPanel + kGap + 40;
  std::string out = fmt::format(
      "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif'>\n"
      "<rect width='100%' height='100%' fill='white'/>\n<text x='{}' y='18' font-size='13'>{}</text>\n",
      kWidth, height, kLeft, title);
  if (lines.empty() || lines.front().series.points.empty()) return out + "</svg>\n";
  out += fmt::format("<text x='{}' y='{}' font-size='11'>CPU: demand (10 ms peaks, grey), cpu.max per policy</text>\n",
                     kLeft + 5, kTop + 14);
  out += panel(lines, kTop, "cores", 1, &PlotPoint::demand_peak, &PlotPoint::cpu_limit);
  const double mem_top = kTop + kPanel + kGap;
  out += fmt::format("<text x='{}' y='{}' font-size='11'>memory: demand (grey), memory.max per policy</text>\n",
                     kLeft + 5, mem_top + 14);
  out += panel(lines, mem_top, "GiB", double(1ull << 30), &PlotPoint::memory, &PlotPoint::memory_max);
  for (std::size_t i = 0; i < lines.size(); ++i)
    out += fmt::format("<text x='{:.0f}' y='{:.0f}' font-size='11' fill='{}'>{}</text>\n",
                       kLeft + 95.0 * static_cast<double>(i), height - 12, kColors[i % std::size(kColors)],
                       lines[i].policy);
  return out + "</svg>\n";
}

}  // namespace ebb::sim
