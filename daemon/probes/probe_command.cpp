#include "daemon/probes/probe_command.h"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <unordered_map>

#include "daemon/cgroup/cgroup.h"
#include "daemon/discovery/discovery.h"

namespace ebb::probes {
namespace {

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

constexpr std::array<Event::Kind, 4> kKinds{Event::Kind::oom_kill, Event::Kind::runq_latency,
                                            Event::Kind::reclaim_stall, Event::Kind::throttled};

// Waits out the duration on the event fd, recording every event as it arrives.
void collect_events(ProbeSource& probes, std::chrono::nanoseconds duration, ProbeReport& report,
                    const std::unordered_map<std::uint64_t, std::size_t>& index) {
  const auto deadline = std::chrono::steady_clock::now() + duration;
  const auto on_event = [&](const Event& e) {
    const auto found = index.find(e.cgroup_id);
    if (found != index.end()) ++report.cgroups[found->second].events[static_cast<std::size_t>(e.kind)];
    if (report.events.size() < ProbeReport::kMaxListedEvents) {
      report.events.push_back({e, found != index.end() ? report.cgroups[found->second].path : std::string(),
                               monotonic_ns() - static_cast<std::int64_t>(e.timestamp_ns)});
    }
  };
  for (auto now = std::chrono::steady_clock::now(); now < deadline; now = std::chrono::steady_clock::now()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    pollfd pfd{probes.event_fd(), POLLIN, 0};
    // With no event fd, poll() just sleeps out the time.
    if (::poll(&pfd, pfd.fd >= 0 ? 1 : 0, static_cast<int>(left.count())) > 0) probes.consume(on_event);
  }
  probes.consume(on_event);
}

}  // namespace

std::string render_table(const ProbeReport& report) {
  std::string out = "probes " + describe(report.probes) + "\n";
  out += "over " + fixed(std::chrono::duration<double>(report.duration).count(), 1) + " s\n";
  const std::vector<std::string> header{"CGROUP", "CPU_MS", "RUNQ_P50_US", "RUNQ_P99_US", "INVOL_SWITCHES",
                                        "RECLAIM_STALL_MS", "OOM_KILLS", "THROTTLED", "EVENTS"};
  std::vector<std::vector<std::string>> rows{header};
  for (const auto& cg : report.cgroups) {
    const auto& c = cg.counters;
    std::uint64_t events = 0;
    for (auto n : cg.events) events += n;
    rows.push_back({cg.path, fixed(static_cast<double>(c.cpu_ns) / 1e6, 1),
                    fixed(c.runq_latency.percentile_ns(0.5) / 1e3, 0), fixed(c.runq_latency.percentile_ns(0.99) / 1e3, 0),
                    std::to_string(c.involuntary_switches), fixed(static_cast<double>(c.reclaim_stall_ns) / 1e6, 1),
                    std::to_string(c.oom_kills), std::to_string(c.throttle_episodes), std::to_string(events)});
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      // The path left-aligned, numbers right-aligned.
      const std::string pad(width[i] - row[i].size(), ' ');
      line += i == 0 ? row[i] + pad : "  " + pad + row[i];
    }
    out += line + "\n";
  }
  return out;
}

nlohmann::json to_json(const ProbeReport& report) {
  using nlohmann::json;
  json probes = json::array();
  for (const auto& p : report.probes) probes.push_back({{"name", p.name}, {"attached", p.attached}, {"detail", p.detail}});
  json cgroups = json::array();
  for (const auto& cg : report.cgroups) {
    const auto& c = cg.counters;
    json events = json::object();
    for (const auto kind : kKinds) events[to_string(kind)] = cg.events[static_cast<std::size_t>(kind)];
    cgroups.push_back({{"path", cg.path},
                       {"name", cg.name},
                       {"id", cg.id},
                       {"cpu_ns", c.cpu_ns},
                       {"runq_latency",
                        {{"count", c.runq_latency.count},
                         {"sum_ns", c.runq_latency.sum_ns},
                         {"p50_ns", c.runq_latency.percentile_ns(0.5)},
                         {"p99_ns", c.runq_latency.percentile_ns(0.99)},
                         {"buckets", c.runq_latency.buckets}}},
                       {"involuntary_switches", c.involuntary_switches},
                       {"reclaim_stall_ns", c.reclaim_stall_ns},
                       {"oom_kills", c.oom_kills},
                       {"throttle_episodes", c.throttle_episodes},
                       {"events", events}});
  }
  json events = json::array();
  for (const auto& e : report.events) {
    events.push_back({{"kind", to_string(e.event.kind)},
                      {"cgroup_id", e.event.cgroup_id},
                      {"path", e.path},
                      {"value_ns", e.event.value_ns},
                      {"timestamp_ns", e.event.timestamp_ns},
                      {"delivery_ns", e.delivery_ns}});
  }
  return {{"duration_ns", report.duration.count()}, {"probes", probes}, {"cgroups", cgroups}, {"events", events}};
}

int run_probe_command(const ProbeCommandOptions& options, ProbeSource& probes, std::ostream& out, std::ostream& err) {
  std::vector<discovery::Selector> selectors;
  for (const auto& pattern : options.selectors) {
    auto selector = discovery::Selector::parse(pattern);
    if (!selector) {
      err << "ebbd probe: " << selector.error().to_string() << "\n";
      return 2;
    }
    selectors.push_back(std::move(*selector));
  }
  const cgroup::CgroupFs fs(options.cgroup_root);
  auto candidates = discovery::scan(fs, selectors);
  if (!candidates) {
    err << "ebbd probe: " << candidates.error().to_string() << "\n";
    return 1;
  }

  ProbeReport report;
  report.probes = probes.status();
  report.duration = options.duration;
  std::unordered_map<std::uint64_t, std::size_t> index;
  for (const auto& c : *candidates) {
    if (auto tracked = probes.track(c.id); !tracked) {
      err << "ebbd probe: " << c.path << ": " << tracked.error().to_string() << "\n";
      continue;
    }
    index.emplace(c.id, report.cgroups.size());
    report.cgroups.push_back({c.path, c.name, c.id, {}, {}});
  }
  if (report.cgroups.empty()) {
    err << "ebbd probe: no cgroup below " << options.cgroup_root.string() << " to probe (selectors match none)\n";
    return 1;
  }

  collect_events(probes, options.duration, report, index);
  auto counters = probes.read();
  if (!counters) {
    err << "ebbd probe: " << counters.error().to_string() << "\n";
    return 1;
  }
  for (auto& cg : report.cgroups) {
    if (const auto found = counters->find(cg.id); found != counters->end()) cg.counters = found->second;
  }
  if (options.json) {
    out << to_json(report).dump(2) << "\n";
  } else {
    out << render_table(report);
  }
  return 0;
}

int run_probe_command(const ProbeCommandOptions& options, std::ostream& out, std::ostream& err) {
  auto probes = open_bpf_probes(options.probe_options);
  if (!probes) {
    err << "ebbd probe: eBPF probes unavailable: " << probes.error().to_string() << "\n";
    return 1;
  }
  return run_probe_command(options, **probes, out, err);
}

}  // namespace ebb::probes
