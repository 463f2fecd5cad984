#include "daemon/api/convert.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cmath>

#include "daemon/control/observe.h"

namespace ebb::api {

v1::Mode to_proto(config::Mode mode) {
  switch (mode) {
    case config::Mode::automatic: return v1::MODE_AUTO;
    case config::Mode::recommend: return v1::MODE_RECOMMEND;
    case config::Mode::off: return v1::MODE_OFF;
  }
  return v1::MODE_UNSPECIFIED;
}

std::optional<config::Mode> mode_from_proto(v1::Mode mode) {
  switch (mode) {
    case v1::MODE_AUTO: return config::Mode::automatic;
    case v1::MODE_RECOMMEND: return config::Mode::recommend;
    case v1::MODE_OFF: return config::Mode::off;
    default: return std::nullopt;
  }
}

void fill_node(const control::Engine& engine, const NodeInfo& info, v1::Node& out) {
  const auto& cfg = engine.config();
  out.set_version(info.version);
  out.set_uptime_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - info.started).count());
  out.set_cpu_cores(engine.node().cpu_cores);
  out.set_memory_bytes(engine.node().memory_bytes);
  out.set_cpu_budget_cores(engine.cpu_budget());
  for (const auto& p : info.probes) {
    auto* s = out.add_probes();
    s->set_name(p.name);
    s->set_attached(p.attached);
    s->set_detail(p.detail);
  }
  out.set_containers(static_cast<std::uint32_t>(engine.containers().size()));
  out.set_ticks(engine.ticks());
  out.set_tick_seconds(std::chrono::duration<double>(cfg.tick).count());
  out.set_dry_run(cfg.dry_run);
  out.set_policy(config::to_string(cfg.policy));
  out.set_cgroup_root(cfg.cgroup_root.string());
  for (const auto& s : cfg.select) out.add_select(s);
  for (const auto& [path, why] : engine.unmanageable()) {
    auto* u = out.add_unmanageable();
    u->set_path(path);
    u->set_reason(why);
  }
}

namespace {

void fill_limits(const policy::Limits& limits, v1::Limits& out) {
  if (limits.cpu_cores) out.set_cpu_cores(*limits.cpu_cores);
  if (limits.memory_high_bytes) out.set_memory_high_bytes(*limits.memory_high_bytes);
  if (limits.memory_max_bytes) out.set_memory_max_bytes(*limits.memory_max_bytes);
}

void fill_usage(const policy::Observation& o, v1::Usage& out) {
  out.set_cpu_usage_cores(o.cpu_usage_cores);
  out.set_cpu_throttled_fraction(o.cpu_throttled_periods);
  out.set_cpu_throttled_seconds_per_second(o.cpu_throttled_s_per_s);
  out.set_cpu_pressure_some_avg10(o.cpu_pressure_some_avg10);
  if (o.runq_latency_p99_us) out.set_runq_latency_p99_us(*o.runq_latency_p99_us);
  out.set_memory_current_bytes(o.memory_current_bytes);
  out.set_memory_working_set_bytes(o.memory_working_set_bytes);
  out.set_memory_pressure_some_avg10(o.memory_pressure_some_avg10);
  out.set_reclaim_stall_seconds_per_second(o.reclaim_stall_s_per_s);
}

}  // namespace

void fill_container(const control::Container& c, v1::Container& out) {
  out.set_path(c.path);
  out.set_name(c.name);
  out.set_id(c.id);
  out.set_mode(to_proto(c.settings.mode));
  out.set_priority(to_proto(c.settings.priority));
  out.set_group(c.settings.group);
  if (c.last_snapshot) fill_limits(control::current_limits(*c.last_snapshot), *out.mutable_limits());
  fill_usage(c.last_observation, *out.mutable_usage());
  out.set_decisions(c.decisions);
  out.set_limit_writes(c.limit_writes);
  out.set_event_reactions(c.event_reactions);
  out.set_oom_kills(c.oom_kills);
  out.set_last_error(c.reported_error);
}

void fill_decision(const control::DecisionRecord& record, v1::Decision& out) {
  *out.mutable_at() = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::nanoseconds>(record.at.time_since_epoch()).count());
  out.set_source(record.decision.source);
  out.set_reason(record.decision.reason);
  fill_limits(record.decision.limits, *out.mutable_limits());
  if (record.decision.predicted_cpu_cores) out.set_predicted_cpu_cores(*record.decision.predicted_cpu_cores);
  for (const auto& w : record.writes) out.add_writes(w);
  out.set_applied(record.applied);
  out.set_event_driven(record.event_driven);
  out.set_error(record.error);
  fill_usage(record.observation, *out.mutable_observed());
  const auto& o = record.observation;
  fill_limits({o.cpu_limit_cores, o.memory_high_bytes, o.memory_max_bytes}, *out.mutable_previous());
}

void fill_detail(const control::Container& c, std::size_t decisions, v1::ContainerDetail& out) {
  fill_container(c, *out.mutable_container());
  auto& p = *out.mutable_policy();
  const auto& s = c.settings;
  p.set_mode(to_proto(s.mode));
  p.set_cpu_min_cores(s.bounds.cpu_min_cores);
  p.set_cpu_max_cores(s.bounds.cpu_max_cores);
  p.set_memory_min_bytes(s.bounds.memory_min_bytes);
  p.set_memory_max_bytes(s.bounds.memory_max_bytes);
  p.set_throttle_target(s.objective.throttled_fraction);
  if (s.objective.runq_latency_p99_us) p.set_runq_latency_p99_target_us(*s.objective.runq_latency_p99_us);
  p.set_priority(to_proto(s.priority));
  p.set_weight(s.weight);
  p.set_group(s.group);
  if (c.last_probe && c.last_probe->runq_latency.count > 0) {
    const auto& h = c.last_probe->runq_latency;
    auto& l = *out.mutable_runq_latency();
    l.set_p50_us(h.percentile_ns(0.5) / 1e3);
    l.set_p90_us(h.percentile_ns(0.9) / 1e3);
    l.set_p99_us(h.percentile_ns(0.99) / 1e3);
    l.set_count(h.count);
  }
  if (c.controller) out.set_controller(c.controller->name());
  out.set_wanted_cpu_cores(c.wanted_cpu_cores);
  if (c.last_decision && c.last_decision->predicted_cpu_cores) {
    out.set_predicted_cpu_cores(*c.last_decision->predicted_cpu_cores);
  }
  const std::size_t n = std::min(decisions, c.history.size());
  for (auto it = c.history.end() - static_cast<std::ptrdiff_t>(n); it != c.history.end(); ++it) {
    fill_decision(*it, *out.add_decisions());
  }
  out.set_events_suppressed(c.events_suppressed);
}

Result<ContainerFilter> ContainerFilter::from_glob(const std::string& glob, const std::string& field) {
  ContainerFilter f;
  if (glob.empty()) return f;
  auto s = discovery::Selector::parse(glob);
  if (!s) return Error{field + ": " + s.error().message};
  f.select_ = std::move(*s);
  return f;
}

Result<ContainerFilter> ContainerFilter::from(const v1::ListContainersRequest& request) {
  auto f = from_glob(request.select(), "select");
  if (!f) return f;
  if (request.mode() != v1::MODE_UNSPECIFIED) {
    f->mode_ = mode_from_proto(request.mode());
    if (!f->mode_) return Error{"mode: unknown value " + std::to_string(request.mode())};
  }
  if (request.priority() != v1::PRIORITY_CLASS_UNSPECIFIED) {
    f->priority_ = priority_from_proto(request.priority());
    if (!f->priority_) return Error{"priority: unknown value " + std::to_string(request.priority())};
  }
  f->group_ = request.group();
  return f;
}

bool ContainerFilter::matches(const std::string& path, const std::string& name) const {
  return !select_ || select_->matches(path) || select_->matches(name);
}

bool ContainerFilter::matches(const control::Container& c) const {
  if (!matches(c.path, c.name)) return false;
  if (mode_ && c.settings.mode != *mode_) return false;
  if (priority_ && c.settings.priority != *priority_) return false;
  return group_.empty() || c.settings.group == group_;
}

namespace {

// Ranges as the config file accepts them (daemon/config).
std::optional<Error> out_of_range(const char* field, double value, double lo, double hi) {
  if (std::isfinite(value) && value >= lo && value <= hi) return std::nullopt;
  char text[160];
  std::snprintf(text, sizeof text, "settings.%s: must be between %g and %g (got %g)", field, lo, hi, value);
  return Error{text};
}

}  // namespace

Result<config::ContainerSettings> settings_from_proto(const v1::PolicySettings& in) {
  config::ContainerSettings out;
  if (in.mode() != v1::MODE_UNSPECIFIED) {
    out.mode = mode_from_proto(in.mode());
    if (!out.mode) return Error{"settings.mode: unknown value " + std::to_string(in.mode())};
  }
  if (in.priority() != v1::PRIORITY_CLASS_UNSPECIFIED) {
    out.priority = priority_from_proto(in.priority());
    if (!out.priority) return Error{"settings.priority: unknown value " + std::to_string(in.priority())};
  }
  struct Number {
    const char* field;
    bool set;
    double value, lo, hi;
    std::optional<double>* target;
  };
  const Number numbers[] = {
      {"cpu_min_cores", in.has_cpu_min_cores(), in.cpu_min_cores(), 0.001, 4096, &out.cpu_min_cores},
      {"cpu_max_cores", in.has_cpu_max_cores(), in.cpu_max_cores(), 0, 4096, &out.cpu_max_cores},
      {"throttle_target", in.has_throttle_target(), in.throttle_target(), 0, 1, &out.throttle_target},
      {"runq_latency_p99_target_us", in.has_runq_latency_p99_target_us(), in.runq_latency_p99_target_us(), 1, 1e7,
       &out.runq_latency_p99_target_us},
      {"weight", in.has_weight(), in.weight(), 0.001, 1e6, &out.weight},
  };
  for (const auto& n : numbers) {
    if (!n.set) continue;
    if (auto e = out_of_range(n.field, n.value, n.lo, n.hi)) return *e;
    *n.target = n.value;
  }
  // A memory floor under 1 MiB would starve any process; 0 max means "the node's memory".
  if (in.has_memory_min_bytes()) {
    if (in.memory_min_bytes() < (1u << 20)) {
      return Error{"settings.memory_min_bytes: must be at least 1 MiB (got " + std::to_string(in.memory_min_bytes()) + ")"};
    }
    out.memory_min_bytes = in.memory_min_bytes();
  }
  if (in.has_memory_max_bytes()) {
    if (in.memory_max_bytes() != 0 && in.memory_max_bytes() < (1u << 20)) {
      return Error{"settings.memory_max_bytes: must be 0 (the node's memory) or at least 1 MiB (got " +
                   std::to_string(in.memory_max_bytes()) + ")"};
    }
    out.memory_max_bytes = in.memory_max_bytes();
  }
  if (in.has_group()) out.group = in.group();
  if (auto s = check_consistent(out); !s) return s.error();
  return out;
}

Status check_consistent(const config::ContainerSettings& s) {
  if (s.cpu_min_cores && s.cpu_max_cores && *s.cpu_max_cores > 0 && *s.cpu_min_cores > *s.cpu_max_cores) {
    return Error{"settings.cpu_min_cores: above cpu_max_cores (" + std::to_string(*s.cpu_min_cores) + " > " +
                 std::to_string(*s.cpu_max_cores) + ")"};
  }
  if (s.memory_min_bytes && s.memory_max_bytes && *s.memory_max_bytes > 0 && *s.memory_min_bytes > *s.memory_max_bytes) {
    return Error{"settings.memory_min_bytes: above memory_max_bytes (" + std::to_string(*s.memory_min_bytes) + " > " +
                 std::to_string(*s.memory_max_bytes) + ")"};
  }
  return ok_status();
}

Status validate(const v1::GetContainerRequest& request) {
  if (request.name().empty()) return Error{"name: required (a container's name or path)"};
  return ok_status();
}

Result<WatchRequest> validate(const v1::WatchEventsRequest& request) {
  auto filter = ContainerFilter::from_glob(request.select(), "select");
  if (!filter) return filter.error();
  WatchRequest out{std::move(*filter), {}};
  for (int i = 0; i < request.kinds_size(); ++i) {
    const int kind = request.kinds(i);
    if (kind == v1::EVENT_KIND_UNSPECIFIED || !v1::EventKind_IsValid(kind)) {
      return Error{"kinds[" + std::to_string(i) + "]: unknown event kind " + std::to_string(kind)};
    }
    out.kinds.insert(kind);
  }
  return out;
}

Result<PolicyRequest> validate(const v1::SetPolicyRequest& request) {
  PolicyRequest out;
  switch (request.target_case()) {
    case v1::SetPolicyRequest::TARGET_NOT_SET:
      return Error{"target: set either container (a name or path) or select (a glob)"};
    case v1::SetPolicyRequest::kContainer:
      if (request.container().empty()) return Error{"container: must not be empty"};
      out.container = request.container();
      break;
    case v1::SetPolicyRequest::kSelect:
      if (auto s = discovery::Selector::parse(request.select()); !s) return Error{"select: " + s.error().message};
      out.select = request.select();
      break;
  }
  auto settings = settings_from_proto(request.settings());
  if (!settings) return settings.error();
  out.settings = std::move(*settings);
  out.reset = request.reset();
  return out;
}

v1::PolicySettings to_proto(const config::ContainerSettings& s) {
  v1::PolicySettings out;
  if (s.mode) out.set_mode(to_proto(*s.mode));
  if (s.priority) out.set_priority(to_proto(*s.priority));
  if (s.cpu_min_cores) out.set_cpu_min_cores(*s.cpu_min_cores);
  if (s.cpu_max_cores) out.set_cpu_max_cores(*s.cpu_max_cores);
  if (s.memory_min_bytes) out.set_memory_min_bytes(*s.memory_min_bytes);
  if (s.memory_max_bytes) out.set_memory_max_bytes(*s.memory_max_bytes);
  if (s.throttle_target) out.set_throttle_target(*s.throttle_target);
  if (s.runq_latency_p99_target_us) out.set_runq_latency_p99_target_us(*s.runq_latency_p99_target_us);
  if (s.weight) out.set_weight(*s.weight);
  if (s.group) out.set_group(*s.group);
  return out;
}

}  // namespace ebb::api
