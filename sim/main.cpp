// ebb-sim: replays workloads against policies on a simulated node and writes the report.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/common/duration.h"
#include "sim/policies.h"
#include "sim/random.h"
#include "sim/report.h"
#include "sim/synthetic.h"
#include "sim/traces.h"

namespace fs = std::filesystem;
using namespace ebb;
using namespace ebb::sim;

namespace {

struct Options {
  std::string trace_dir;
  std::string format = "synthetic";
  std::string policies = "all";
  std::string report;
  std::string workloads = "steady,diurnal,onoff,spikes,steps,phases,leak,memspike";
  std::uint64_t seed = 1;
  std::string tick = "100ms";
  std::string duration;  // default: the trace's length, or one compressed day
  double compression = 0;  // default: 300 for gcd and synthetic, 1 for csv
  int containers = 0;      // default: 16 per synthetic workload, every trace container
  int skip = 0;
  double node_cpus = 0;
  std::string node_memory;
  double burst_amplitude = 0;
  double gcd_cpu_cores = 8;
  std::string gcd_memory = "16GiB";
  std::vector<std::size_t> plot = {0};
  int plot_points = 300;
  bool progress = false;
};

Result<double> seconds(const std::string& text) {
  auto d = parse_duration(text);
  if (!d) return d.error();
  return std::chrono::duration<double>(*d).count();
}

std::vector<std::string> split(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Keeps `count` containers from `skip` on (count 0: all).
void select(Workload& w, int skip, int count) {
  auto& c = w.containers;
  c.erase(c.begin(), c.begin() + std::min<std::ptrdiff_t>(skip, static_cast<std::ptrdiff_t>(c.size())));
  if (count > 0 && static_cast<std::size_t>(count) < c.size()) c.resize(static_cast<std::size_t>(count));
}

Workload from_series(std::string name, std::vector<NamedSeries> series, const Options& o, double compression,
                     double tick_s) {
  Workload w;
  w.name = std::move(name);
  w.compression = compression;
  const BurstParams bursts{o.burst_amplitude};
  const std::uint64_t seed = mix64(o.seed ^ hash_name(w.name));
  double end = 0;
  for (std::size_t i = 0; i < series.size(); ++i) {
    auto& [cname, s] = series[i];
    // The last sample holds for one more step, as the ones before it did.
    const double step = s.times_s.size() > 1 ? s.times_s.back() - s.times_s[s.times_s.size() - 2] : 0;
    end = std::max(end, (s.times_s.back() + step) / compression);
    w.containers.push_back(series_container(cname, std::move(s), compression, tick_s, bursts, mix64(seed + i)));
  }
  w.duration_s = end;
  return w;
}

Result<std::vector<Workload>> load(const Options& o, double tick_s) {
  std::vector<Workload> out;
  if (o.format == "synthetic") {
    SyntheticOptions so;
    so.compression = o.compression > 0 ? o.compression : 300;
    so.duration_s = 86400 / so.compression;
    so.containers = o.containers > 0 ? o.containers : 16;
    so.tick_s = tick_s;
    so.seed = o.seed;
    for (const auto& name : split(o.workloads)) {
      if (name != "mixed" && !parse_synthetic_kind(name))
        return Error{"unknown synthetic workload '" + name + "' (known: mixed and " +
                     fmt::format("{}", fmt::join(synthetic_kind_names(), ", ")) + ")"};
      out.push_back(synthetic_workload(name, so));
    }
  } else if (o.format == "gcd") {
    GcdScale scale;
    scale.cpu_cores = o.gcd_cpu_cores;
    auto memory = parse_bytes(o.gcd_memory);
    if (!memory) return memory.error();
    scale.memory_bytes = *memory;
    auto series = read_gcd((fs::path(o.trace_dir) / "GCD_VMs.tar.gz").string(), scale);
    if (!series) return series.error();
    out.push_back(from_series(o.burst_amplitude > 0 ? "gcd-bursty" : "gcd", std::move(*series), o,
                              o.compression > 0 ? o.compression : 300, tick_s));
  } else if (o.format == "csv") {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.trace_dir, ec))
      if (e.path().extension() == ".csv") files.push_back(e.path());
    if (ec) return system_error("cannot list", o.trace_dir, ec.value());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f);
      std::stringstream text;
      text << in.rdbuf();
      auto series = parse_trace_csv(text.str(), f.string());
      if (!series) return series.error();
      out.push_back(from_series(f.stem().string(), std::move(*series), o, o.compression > 0 ? o.compression : 1, tick_s));
    }
    if (out.empty()) return Error{"no .csv files", o.trace_dir};
  } else {
    return Error{"unknown format '" + o.format + "' (gcd, csv or synthetic)"};
  }
  auto node_memory = o.node_memory.empty() ? Result<std::uint64_t>(0) : parse_bytes(o.node_memory);
  if (!node_memory) return node_memory.error();
  for (auto& w : out) {
    select(w, o.skip, o.format == "synthetic" ? 0 : o.containers);
    if (w.containers.empty()) return Error{"workload " + w.name + " has no containers left"};
    if (!o.duration.empty()) {
      auto d = seconds(o.duration);
      if (!d) return d.error();
      w.duration_s = *d;
    }
    w.node_cpu_cores = o.node_cpus;
    w.node_memory_bytes = *node_memory;
    size_node(w);
  }
  return out;
}

Status write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return system_error("cannot write", path.string(), errno);
  return ok_status();
}

int fail(const Error& e) {
  std::fprintf(stderr, "ebb-sim: %s\n", e.to_string().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"ebb-sim: replays container workloads against resource policies on a simulated node"};
  app.option_defaults()->always_capture_default();
  app.add_option("--trace-dir", o.trace_dir, "Directory of the traces (gcd: holds GCD_VMs.tar.gz; csv: *.csv)");
  app.add_option("--format", o.format, "gcd, csv or synthetic")->check(CLI::IsMember({"gcd", "csv", "synthetic"}));
  app.add_option("--policies", o.policies, "Comma-separated policy names, or all");
  app.add_option("--report", o.report, "Output directory for results.csv, summary.md and plots")->required();
  app.add_option("--workloads", o.workloads, "Synthetic workloads: kinds and/or mixed");
  app.add_option("--seed", o.seed, "Seed of the synthetic generators and of the bursts");
  app.add_option("--tick", o.tick, "Controller interval (a multiple of 10 ms)");
  app.add_option("--duration", o.duration, "Simulated time (default: the trace, or one compressed day)");
  app.add_option("--compression", o.compression, "Trace seconds per simulated second (default 300; csv: 1)");
  app.add_option("--containers", o.containers, "Containers per synthetic workload, or the first N of a trace");
  app.add_option("--skip", o.skip, "Trace containers to skip before the first selected one");
  app.add_option("--node-cpus", o.node_cpus, "Node CPU capacity (default: the sum of the containers' peaks)");
  app.add_option("--node-memory", o.node_memory, "Node memory (default: the sum of the declared limits)");
  app.add_option("--burst-amplitude", o.burst_amplitude, "Bursts inside each trace step: peak = (1 + A) x level");
  app.add_option("--gcd-cpu-cores", o.gcd_cpu_cores, "Cores that 100% CPU of the GCD traces stands for");
  app.add_option("--gcd-memory", o.gcd_memory, "Memory that 100% of the GCD traces stands for");
  app.add_option("--plot", o.plot, "Indices of the containers to plot in each workload, e.g. 0,5")->delimiter(',');
  app.add_option("--plot-points", o.plot_points, "Points per plotted line");
  app.add_flag("--progress", o.progress, "Show progress on stderr even when it is not a terminal");
  CLI11_PARSE(app, argc, argv);

  auto tick = seconds(o.tick);
  if (!tick) return fail(tick.error());
  const double substeps = *tick / kSubstepS;
  if (*tick <= 0 || std::abs(substeps - std::round(substeps)) > 1e-9)
    return fail(Error{"--tick must be a positive multiple of 10ms"});
  if ((o.format != "synthetic") && o.trace_dir.empty()) return fail(Error{"--trace-dir is required for " + o.format});
  auto policies = select_policies(o.policies);
  if (!policies) return fail(policies.error());
  auto workloads = load(o, *tick);
  if (!workloads) return fail(workloads.error());

  std::error_code ec;
  fs::create_directories(o.report, ec);
  if (ec) return fail(system_error("cannot create", o.report, ec.value()));

  const bool show_progress = o.progress || isatty(STDERR_FILENO);
  std::vector<ResultRow> rows;
  std::string settings;
  std::vector<std::string> plot_files;
  for (const auto& w : *workloads) {
    settings += fmt::format("- {}: {} containers, {:.0f} s simulated, compression {:g}, node {:g} CPUs / {:.1f} GiB\n",
                            w.name, w.containers.size(), w.duration_s, w.compression, w.node_cpu_cores,
                            static_cast<double>(w.node_memory_bytes) / (1ull << 30));
    EngineOptions eo;
    eo.tick_s = *tick;
    eo.plot_containers = o.plot;
    eo.plot_points = o.plot_points;
    std::optional<std::vector<TraceSummary>> summaries;
    std::vector<std::vector<PlotLine>> plots(o.plot.size());
    for (const auto& p : *policies) {
      if (p.needs_summary && !summaries) summaries = survey(w, *tick);
      if (show_progress) {
        eo.progress = [&](double done) {
          const int width = 30, filled = static_cast<int>(done * width);
          std::fprintf(stderr, "\r%-14s %-14s [%s%s] %3.0f%%", w.name.c_str(), p.name.c_str(),
                       std::string(static_cast<std::size_t>(filled), '#').c_str(),
                       std::string(static_cast<std::size_t>(width - filled), ' ').c_str(), done * 100);
        };
      }
      auto result = run(w, p, eo, summaries ? &*summaries : nullptr);
      rows.push_back({w.name, p.name, result.metrics});
      for (std::size_t k = 0; k < result.plots.size(); ++k) plots[k].push_back({p.name, std::move(result.plots[k])});
    }
    if (show_progress) std::fputc('\n', stderr);
    for (const auto& lines : plots) {
      if (lines.empty() || lines.front().series.points.empty()) continue;
      const std::string file = fmt::format("plot-{}-{}.svg", w.name, lines.front().series.container);
      if (auto s = write_file(fs::path(o.report) / file, plot_svg(w.name + " / " + lines.front().series.container, lines)); !s)
        return fail(s.error());
      plot_files.push_back(file);
    }
  }

  std::string command = "ebb-sim";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::string preamble = fmt::format("# ebb-sim report\n\n`{}`\n\nTick {} ms, seed {}, bursts {}.\n\n{}", command,
                                     *tick * 1e3, o.seed,
                                     o.burst_amplitude > 0 ? fmt::format("amplitude {:g}", o.burst_amplitude) : "none",
                                     settings);
  std::string md = summary_markdown(rows, preamble);
  if (!plot_files.empty()) {
    md += "\n## Plots\n\n";
    for (const auto& f : plot_files) md += fmt::format("![{}]({})\n", f, f);
  }
  for (const auto& [file, text] : {std::pair{"results.csv", results_csv(rows)}, std::pair{"summary.md", md}})
    if (auto s = write_file(fs::path(o.report) / file, text); !s) return fail(s.error());
  std::fprintf(stderr, "ebb-sim: wrote %s/results.csv, summary.md and %zu plots\n", o.report.c_str(), plot_files.size());
  return 0;
}
