#include "cli/format.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <vector>

#include "daemon/common/duration.h"

namespace ebb::cli {

namespace {

std::string printf_string(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

std::string memory(bool set, std::uint64_t bytes) { return set ? format_bytes(bytes) : "max"; }

std::string clock_time(const google::protobuf::Timestamp& at) {
  const std::time_t seconds = at.seconds();
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03dZ", tm.tm_hour, tm.tm_min, tm.tm_sec, at.nanos() / 1000000);
  return text;
}

// Columns padded to their widest cell.
std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << '\n';
  }
  return out.str();
}

// "raised the CPU limit from 0.50 to 0.75 cores" and the like, for each limit that changed.
std::vector<std::string> changes(const v1::Limits& before, const v1::Limits& after) {
  std::vector<std::string> out;
  auto verb = [](bool had, double from, bool has, double to) {
    if (!has) return "lifted";
    if (!had) return "set";
    return to > from ? "raised" : "lowered";
  };
  if (before.has_cpu_cores() != after.has_cpu_cores() || before.cpu_cores() != after.cpu_cores()) {
    out.push_back(std::string(verb(before.has_cpu_cores(), before.cpu_cores(), after.has_cpu_cores(), after.cpu_cores())) +
                  " the CPU limit from " + cpu_limit(before) + " to " + cpu_limit(after) +
                  (after.has_cpu_cores() ? " cores" : ""));
  }
  auto mem = [&](const char* file, bool had, std::uint64_t from, bool has, std::uint64_t to) {
    if (had == has && from == to) return;
    out.push_back(std::string(verb(had, double(from), has, double(to))) + " " + file + " from " + memory(had, from) +
                  " to " + memory(has, to));
  };
  mem("memory.high", before.has_memory_high_bytes(), before.memory_high_bytes(), after.has_memory_high_bytes(),
      after.memory_high_bytes());
  mem("memory.max", before.has_memory_max_bytes(), before.memory_max_bytes(), after.has_memory_max_bytes(),
      after.memory_max_bytes());
  return out;
}

}  // namespace

std::string cores(double value) { return printf_string("%.2f", value); }
std::string cpu_limit(const v1::Limits& limits) { return limits.has_cpu_cores() ? cores(limits.cpu_cores()) : "max"; }
std::string percent(double fraction) { return printf_string("%.1f%%", fraction * 100); }

std::string mode_name(v1::Mode mode) {
  switch (mode) {
    case v1::MODE_AUTO: return "auto";
    case v1::MODE_RECOMMEND: return "recommend";
    case v1::MODE_OFF: return "off";
    default: return "?";
  }
}

std::string priority_name(v1::PriorityClass priority) {
  switch (priority) {
    case v1::PRIORITY_CLASS_GUARANTEED: return "guaranteed";
    case v1::PRIORITY_CLASS_BURSTABLE: return "burstable";
    case v1::PRIORITY_CLASS_BEST_EFFORT: return "best-effort";
    default: return "?";
  }
}

std::string event_kind_name(v1::EventKind kind) {
  switch (kind) {
    case v1::EVENT_KIND_DECISION: return "decision";
    case v1::EVENT_KIND_STARVATION: return "starvation";
    case v1::EVENT_KIND_OOM_KILL: return "oom-kill";
    case v1::EVENT_KIND_ADOPTED: return "adopted";
    case v1::EVENT_KIND_DROPPED: return "dropped";
    default: return "?";
  }
}

std::string ps_table(const v1::ListContainersResponse& list) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "CPU LIMIT", "USAGE", "THROTTLED", "RUNQ P99", "MEM USAGE", "MEM HIGH", "MEM MAX", "MODE"}};
  for (const auto& c : list.containers()) {
    const auto& u = c.usage();
    rows.push_back({c.name(), cpu_limit(c.limits()), cores(u.cpu_usage_cores()), percent(u.cpu_throttled_fraction()),
                    u.has_runq_latency_p99_us() ? printf_string("%.0fus", u.runq_latency_p99_us()) : "-",
                    format_bytes(u.memory_current_bytes()),
                    memory(c.limits().has_memory_high_bytes(), c.limits().memory_high_bytes()),
                    memory(c.limits().has_memory_max_bytes(), c.limits().memory_max_bytes()), mode_name(c.mode())});
  }
  return table(rows);
}

std::string node_summary(const v1::Node& n) {
  std::ostringstream out;
  out << "ebbd " << n.version() << ", up " << format_duration(std::chrono::seconds(std::int64_t(n.uptime_seconds())))
      << ", " << n.ticks() << " ticks of " << format_duration(std::chrono::nanoseconds(std::int64_t(n.tick_seconds() * 1e9)))
      << (n.dry_run() ? ", dry run" : "") << '\n';
  out << "node: " << cores(n.cpu_cores()) << " CPUs (budget " << cores(n.cpu_budget_cores()) << "), "
      << format_bytes(n.memory_bytes()) << '\n';
  out << "policy: " << n.policy() << "; cgroup root " << n.cgroup_root() << "; select";
  for (const auto& s : n.select()) out << ' ' << s;
  out << '\n' << "containers: " << n.containers() << " managed";
  if (n.unmanageable_size()) out << ", " << n.unmanageable_size() << " unmanageable";
  out << '\n';
  for (const auto& u : n.unmanageable()) out << "  unmanageable " << u.path() << ": " << u.reason() << '\n';
  if (n.probes().empty()) {
    out << "probes: not loaded (cgroupfs statistics and PSI only)\n";
  } else {
    out << "probes:";
    for (const auto& p : n.probes()) out << ' ' << p.name() << (p.attached() ? "" : " (off: " + p.detail() + ")");
    out << '\n';
  }
  return out.str();
}

std::string explain(const v1::Decision& d) {
  std::ostringstream out;
  out << clock_time(d.at()) << ' ' << (d.source().empty() ? "the controller" : "the " + d.source());
  const auto what = changes(d.previous(), d.limits());
  if (what.empty()) {
    out << " kept the limits";
  } else {
    for (std::size_t i = 0; i < what.size(); ++i) out << (i == 0 ? " " : i + 1 == what.size() ? " and " : ", ") << what[i];
  }
  const auto& o = d.observed();
  out << (d.event_driven() ? " at once, on a starvation event," : "") << " because " << d.reason() << " (it used "
      << cores(o.cpu_usage_cores()) << " cores, throttled in " << percent(o.cpu_throttled_fraction()) << " of periods";
  if (o.has_runq_latency_p99_us()) out << ", run-queue p99 " << printf_string("%.0f", o.runq_latency_p99_us()) << "us";
  out << ", memory " << format_bytes(o.memory_current_bytes()) << ")";
  if (d.has_predicted_cpu_cores()) out << "; it expects " << cores(d.predicted_cpu_cores()) << " cores next";
  if (!d.error().empty()) out << ". The write failed: " << d.error();
  else out << (d.applied() ? ". Applied." : ". Not applied (recommend mode or dry run).");
  return out.str();
}

std::string inspect(const v1::ContainerDetail& detail) {
  const auto& c = detail.container();
  const auto& p = detail.policy();
  const auto& u = c.usage();
  std::ostringstream out;
  out << "name:      " << c.name() << "\npath:      " << c.path() << "\nid:        " << c.id() << '\n';
  out << "mode:      " << mode_name(c.mode()) << "  priority " << priority_name(c.priority())
      << (c.group().empty() ? "" : "  group " + c.group()) << '\n';
  out << "limits:    cpu " << cpu_limit(c.limits()) << ", memory.high "
      << memory(c.limits().has_memory_high_bytes(), c.limits().memory_high_bytes()) << ", memory.max "
      << memory(c.limits().has_memory_max_bytes(), c.limits().memory_max_bytes()) << '\n';
  out << "usage:     cpu " << cores(u.cpu_usage_cores()) << " cores, throttled " << percent(u.cpu_throttled_fraction())
      << ", cpu pressure " << printf_string("%.1f", u.cpu_pressure_some_avg10()) << "%; memory "
      << format_bytes(u.memory_current_bytes()) << " (working set " << format_bytes(u.memory_working_set_bytes())
      << "), memory pressure " << printf_string("%.1f", u.memory_pressure_some_avg10()) << "%\n";
  if (detail.has_runq_latency()) {
    const auto& l = detail.runq_latency();
    out << "run queue: p50 " << printf_string("%.0f", l.p50_us()) << "us, p90 " << printf_string("%.0f", l.p90_us())
        << "us, p99 " << printf_string("%.0f", l.p99_us()) << "us over " << l.count() << " waits\n";
  } else {
    out << "run queue: no probe data\n";
  }
  out << "policy:    cpu " << cores(p.cpu_min_cores()) << ".." << (p.cpu_max_cores() > 0 ? cores(p.cpu_max_cores()) : "node")
      << " cores, memory " << format_bytes(p.memory_min_bytes()) << ".."
      << (p.memory_max_bytes() > 0 ? format_bytes(p.memory_max_bytes()) : "node") << ", throttle target "
      << percent(p.throttle_target());
  if (p.has_runq_latency_p99_target_us()) out << ", run-queue p99 target " << p.runq_latency_p99_target_us() << "us";
  out << ", weight " << p.weight() << '\n';
  out << "learner:   " << (detail.controller().empty() ? "-" : detail.controller()) << ", wants "
      << cores(detail.wanted_cpu_cores()) << " cores";
  if (detail.has_predicted_cpu_cores()) out << ", forecast " << cores(detail.predicted_cpu_cores()) << " cores";
  out << '\n';
  out << "counters:  " << c.decisions() << " decisions, " << c.limit_writes() << " writes, " << c.event_reactions()
      << " event reactions (" << detail.events_suppressed() << " suppressed), " << c.oom_kills() << " OOM kills\n";
  if (!c.last_error().empty()) out << "error:     " << c.last_error() << '\n';
  out << "recent decisions (oldest first):\n";
  if (detail.decisions().empty()) out << "  none yet\n";
  for (const auto& d : detail.decisions()) out << "  " << explain(d) << '\n';
  return out.str();
}

std::string event_line(const v1::Event& e) {
  std::string line = clock_time(e.at()) + ' ' + event_kind_name(e.kind()) + ' ' + e.name();
  switch (e.kind()) {
    case v1::EVENT_KIND_DECISION:
    case v1::EVENT_KIND_STARVATION: {
      line += ": cpu " + cpu_limit(e.decision().previous()) + " -> " + cpu_limit(e.decision().limits());
      const auto& l = e.decision().limits();
      line += ", memory.high " + memory(l.has_memory_high_bytes(), l.memory_high_bytes()) + ", memory.max " +
              memory(l.has_memory_max_bytes(), l.memory_max_bytes()) + " (" + e.decision().source() + ": " +
              e.decision().reason() + ")" + (e.decision().applied() ? "" : " [not applied]");
      break;
    }
    case v1::EVENT_KIND_OOM_KILL: line += ": " + std::to_string(e.oom_kills()) + " process(es) killed"; break;
    case v1::EVENT_KIND_DROPPED: line += ": " + e.reason(); break;
    default: break;
  }
  return line + " (" + e.path() + ")";
}

std::string to_json(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;  // a script reads 0 as 0, not as absent
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

}  // namespace ebb::cli
