#include "daemon/control/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "daemon/arbitration/arbitration.h"

namespace ebb::control {

Engine::Engine(config::Config config, NodeCapacity node, cgroup::CgroupFs& fs, cgroup::LimitWriter& writer,
               StateStore* state, policy::ControllerFactory factory)
    : node_(node), fs_(fs), writer_(writer), state_(state), factory_(std::move(factory)) {
  reconfigure(std::move(config));
}

void Engine::reconfigure(config::Config config) {
  config_ = std::move(config);
  selectors_.clear();
  for (const auto& pattern : config_.select) {
    if (auto s = discovery::Selector::parse(pattern)) selectors_.push_back(*s);
  }
  for (auto& [path, c] : containers_) c.settings = settings_for(path);
}

void Engine::set_api_overrides(std::vector<config::Override> overrides) {
  api_overrides_ = std::move(overrides);
  for (auto& [path, c] : containers_) {
    auto next = settings_for(path);
    // Bounds and objectives are the controller's construction parameters: a controller built
    // with the old ones would go on deciding outside what the operator just set.
    const auto p = params_for(c.settings), q = params_for(next);
    const bool same = p.bounds.cpu_min_cores == q.bounds.cpu_min_cores && p.bounds.cpu_max_cores == q.bounds.cpu_max_cores &&
                      p.bounds.memory_min_bytes == q.bounds.memory_min_bytes &&
                      p.bounds.memory_max_bytes == q.bounds.memory_max_bytes &&
                      p.objective.throttled_fraction == q.objective.throttled_fraction &&
                      p.objective.runq_latency_p99_us == q.objective.runq_latency_p99_us && p.priority == q.priority;
    c.settings = std::move(next);
    if (!same) c.controller = factory_(params_for(c.settings));
  }
}

config::EffectiveSettings Engine::settings_for(const std::string& path) const {
  config::ContainerSettings api;
  for (const auto& o : api_overrides_) {
    auto s = discovery::Selector::parse(o.select);
    if (s && s->matches(path)) api.merge(o.settings);
  }
  return config::resolve_settings(config_, path, &api);
}

policy::ControllerParams Engine::params_for(const config::EffectiveSettings& settings) const {
  policy::ControllerParams p;
  p.bounds = settings.bounds;
  p.objective = settings.objective;
  p.priority = settings.priority;
  p.node_cpu_cores = node_.cpu_cores;
  p.node_memory_bytes = node_.memory_bytes;
  p.tick_s = std::chrono::duration<double>(config_.tick).count();
  return p;
}

const Container* Engine::find_by_id(std::uint64_t id) const {
  for (const auto& [path, c] : containers_) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

void Engine::rescan() {
  auto found = discovery::scan(fs_, selectors_);
  if (!found) {
    spdlog::error("cannot scan cgroups: {}", found.error().to_string());
    return;
  }
  std::set<std::string> present, still_unmanageable;
  for (const auto& candidate : *found) {
    if (!candidate.manageable) {
      if (!unmanageable_.count(candidate.path)) {
        spdlog::warn("cgroup {} is not manageable: {}", candidate.path, candidate.unmanageable_reason);
        notify([&](EngineListener& l) { l.on_unmanageable(candidate.path, candidate.unmanageable_reason); });
      }
      unmanageable_[candidate.path] = candidate.unmanageable_reason;
      still_unmanageable.insert(candidate.path);
      continue;
    }
    present.insert(candidate.path);
    auto it = containers_.find(candidate.path);
    if (it != containers_.end() && it->second.id != candidate.id) {
      drop(it, "recreated", false);
      it = containers_.end();
    }
    if (it == containers_.end()) adopt(candidate);
  }
  // Gone, deselected or manageable now: a cgroup later found unmanageable at that path is new and
  // is reported again.
  std::erase_if(unmanageable_, [&](const auto& entry) { return !still_unmanageable.count(entry.first); });
  for (auto it = containers_.begin(); it != containers_.end();) {
    auto next = std::next(it);
    if (!present.count(it->first)) {
      const bool exists = fs_.cgroup_id(it->first).ok();
      drop(it, exists ? "no longer selected" : "removed", exists);
    }
    it = next;
  }
  // Originals recorded by an earlier run for cgroups that are gone or no longer selected.
  if (state_) {
    std::vector<std::pair<std::string, std::uint64_t>> stale;
    for (const auto& [path, original] : state_->all()) {
      if (!containers_.count(path)) stale.emplace_back(path, original.cgroup_id);
    }
    for (const auto& [path, id] : stale) restore(path, id);
  }
}

void Engine::adopt(const discovery::Candidate& candidate) {
  Container c;
  c.path = candidate.path;
  c.name = candidate.name;
  c.id = candidate.id;
  c.settings = settings_for(candidate.path);
  c.controller = factory_(params_for(c.settings));
  auto snapshot = fs_.snapshot(candidate.path);
  if (!snapshot) {
    if (!snapshot.error().vanished()) spdlog::warn("cannot adopt {}: {}", candidate.path, snapshot.error().to_string());
    return;
  }
  if (state_ && !config_.dry_run) {
    OriginalLimits original;
    original.cgroup_id = candidate.id;
    if (snapshot->cpu_max) original.cpu_max = *snapshot->cpu_max;
    original.memory_high = snapshot->memory_high.value_or(cgroup::kUnlimited);
    original.memory_max = snapshot->memory_max.value_or(cgroup::kUnlimited);
    if (auto status = state_->remember(candidate.path, original); !status) {
      const auto message = status.error().to_string();
      if (message != reported_state_error_) spdlog::error("cannot persist original limits (control continues): {}", message);
      reported_state_error_ = message;
    } else {
      reported_state_error_.clear();
    }
  }
  spdlog::info("adopted {} ({}, id {})", c.name, c.path, c.id);
  auto [it, inserted] = containers_.emplace(c.path, std::move(c));
  notify([&adopted = it->second](EngineListener& l) { l.on_adopted(adopted); });  // clang 14: no structured bindings in captures
}

void Engine::drop(std::map<std::string, Container>::iterator it, const std::string& why, bool restore_limits) {
  const std::string path = it->first;
  const std::uint64_t id = it->second.id;
  spdlog::info("dropped {} ({})", path, why);
  containers_.erase(it);
  fs_.forget(path);
  if (restore_limits) restore(path, id);
  else if (state_) (void)state_->forget(path);
  notify([&](EngineListener& l) { l.on_dropped(path, why); });
}

void Engine::restore(const std::string& path, std::uint64_t id) {
  if (!state_) return;
  const OriginalLimits* original = state_->find(path);
  if (!original) return;
  auto current_id = fs_.cgroup_id(path);
  if (current_id && *current_id == original->cgroup_id && !config_.dry_run) {
    (void)id;
    // memory.max first: if the original is "max" this makes room for memory.high, and an
    // original below the managed value is applied with memory.high already out of the way.
    std::vector<std::pair<const char*, Status>> results;
    results.emplace_back("memory.max", writer_.write_memory_max(path, original->memory_max));
    results.emplace_back("memory.high", writer_.write_memory_high(path, original->memory_high));
    results.emplace_back("cpu.max", writer_.write_cpu_max(path, original->cpu_max));
    for (const auto& [file, status] : results) {
      if (!status && !status.error().vanished()) {
        spdlog::error("cannot restore {} of {}: {}", file, path, status.error().to_string());
        return;  // keep the record so that a later run can retry
      }
    }
    spdlog::info("restored original limits of {}", path);
  }
  (void)state_->forget(path);
}

void Engine::restore_originals() {
  if (!state_) return;
  std::vector<std::pair<std::string, std::uint64_t>> all;
  for (const auto& [path, original] : state_->all()) all.emplace_back(path, original.cgroup_id);
  for (const auto& [path, id] : all) restore(path, id);
}

void Engine::report_error(Container& c, const Error& error) {
  const auto message = error.to_string();
  if (message == c.reported_error) return;
  c.reported_error = message;
  spdlog::warn("{}: {}", c.path, message);
}

std::optional<Engine::Step> Engine::observe_and_decide(Container& c, const probes::CgroupCounters* counters,
                                                       bool starving, cgroup::Freshness freshness) {
  auto snapshot = fs_.snapshot(c.path, freshness);
  if (!snapshot) {
    if (!snapshot.error().vanished()) report_error(c, snapshot.error());
    return std::nullopt;
  }
  std::optional<ProbeDelta> probe;
  if (counters && c.last_probe && c.last_snapshot) {
    probe = probe_delta(*c.last_probe, *counters,
                        std::chrono::duration<double>(snapshot->taken_at - c.last_snapshot->taken_at).count());
  }
  policy::Observation o = observe(c.last_snapshot ? &*c.last_snapshot : nullptr, *snapshot, probe ? &*probe : nullptr);
  o.starving = starving;
  // An event reaction looks at "last tick until now" but leaves the tick's baseline alone: a
  // baseline moved every few milliseconds would leave the next tick an interval with no complete
  // CFS period, in which throttling cannot show.
  if (!starving) {
    if (c.last_snapshot) {
      if (const auto moved = cpu_stat_moved(*c.last_snapshot, *snapshot)) c.cpu_stat_moved = *moved;
    }
    c.last_snapshot = *snapshot;
    if (counters) c.last_probe = *counters;
    c.last_observation = o;
    c.oom_kills += o.oom_kill_events;
  }
  if (c.settings.mode == config::Mode::off) return std::nullopt;
  Step step{&c, std::move(*snapshot), c.controller->decide(o)};
  if (spdlog::should_log(spdlog::level::trace))
    spdlog::trace("{}: usage {:.3f} cores, throttled {:.0f}% of periods, limit {} -> {}{}: {}", c.path, o.cpu_usage_cores,
                o.cpu_throttled_periods * 100, o.cpu_limit_cores ? fmt::format("{:.3f}", *o.cpu_limit_cores) : "max",
                step.decision.limits.cpu_cores ? fmt::format("{:.3f}", *step.decision.limits.cpu_cores) : "max",
                starving ? " (event)" : "", step.decision.reason);
  c.last_decision = step.decision;
  c.wanted_cpu_cores = step.decision.limits.cpu_cores.value_or(node_.cpu_cores);
  ++c.decisions;
  return step;
}

void Engine::set_group_budget(const std::string& group, std::optional<GroupBudget> budget) {
  if (budget && (budget->cpu_cores || budget->memory_bytes)) {
    group_budgets_[group] = *budget;
    if (!budget->memory_bytes) memory_shortfalls_.erase(group);
  } else {
    group_budgets_.erase(group);
    memory_shortfalls_.erase(group);
  }
}

std::map<std::string, Engine::GroupDemand> Engine::group_demand() const {
  std::map<std::string, GroupDemand> out;
  for (const auto& [path, c] : containers_) {
    if (c.settings.group.empty()) continue;
    auto& g = out[c.settings.group];
    g.wanted_cpu_cores += c.wanted_cpu_cores;
    g.used_cpu_cores += c.last_observation.cpu_usage_cores;
    g.memory_bytes += c.last_observation.memory_current_bytes;
    ++g.containers;
  }
  for (const auto& [group, shortfall] : memory_shortfalls_)
    if (auto it = out.find(group); it != out.end()) it->second.memory_shortfall_bytes = shortfall;
  return out;
}

namespace {

arbitration::Claim claim_of(const Container& c, double wanted) {
  arbitration::Claim claim;
  claim.wanted_cores = wanted;
  claim.floor_cores = std::min(c.settings.bounds.cpu_min_cores, wanted);
  claim.weight = c.settings.weight;
  claim.priority = c.settings.priority;
  return claim;
}

// Caps the CPU decisions of `members` so that they sum to at most `budget`, by arbitration.
void cap(std::vector<policy::Decision*>& decisions, const std::vector<const Container*>& members, double budget,
         const char* why) {
  std::vector<arbitration::Claim> claims;
  double wanted = 0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    claims.push_back(claim_of(*members[i], decisions[i]->limits.cpu_cores.value_or(budget)));
    wanted += claims.back().wanted_cores;
  }
  if (wanted <= budget) return;
  auto grants = arbitration::arbitrate(claims, budget);
  if (!grants) {
    spdlog::error("arbitration failed: {}", grants.error().to_string());
    return;
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    if ((*grants)[i] + 1e-9 < claims[i].wanted_cores) {
      decisions[i]->limits.cpu_cores = std::max((*grants)[i], 0.001);
      decisions[i]->reason += std::string("; ") + why;
    }
  }
}

// The room memory.max keeps above usage whatever the group's share: taking it away would turn a
// share that is too small into OOM kills instead of reclaim.
std::uint64_t memory_safety_margin(std::uint64_t usage) { return std::max<std::uint64_t>(usage / 10, 32ull << 20); }

struct MemoryClaim {
  std::uint64_t usage = 0;
  std::uint64_t wanted_max = 0;   // the controller's memory.max, or the ceiling for "max"
  std::uint64_t wanted_high = 0;  // its memory.high, or wanted_max for "max"
  std::uint64_t min_bytes = 0;    // the container's lower bound
  double weight = 1;
  policy::PriorityClass priority = policy::PriorityClass::burstable;
};

struct MemorySplit {
  std::vector<std::uint64_t> max, high;
  std::uint64_t shortfall = 0;  // usage above the share
};

// Splits a group's memory share over its members on this node: memory.max water-filled by the
// wants with usage plus the safety margin as floors, while those floors fit; when they do not,
// every memory.max stays at its floor and memory.high, water-filled over the share, is what
// brings the group back into it.
Result<MemorySplit> split_memory(const std::vector<MemoryClaim>& members, std::uint64_t share) {
  std::vector<arbitration::Claim> claims(members.size());
  double floors = 0, usage = 0;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& m = members[i];
    claims[i].wanted_cores = static_cast<double>(m.wanted_max);
    claims[i].floor_cores = static_cast<double>(std::min(m.wanted_max, m.usage + memory_safety_margin(m.usage)));
    claims[i].weight = m.weight;
    claims[i].priority = m.priority;
    floors += claims[i].floor_cores;
    usage += static_cast<double>(m.usage);
  }
  MemorySplit split;
  split.shortfall = usage > static_cast<double>(share) ? static_cast<std::uint64_t>(usage) - share : 0;
  if (floors <= static_cast<double>(share)) {
    auto grants = arbitration::arbitrate(claims, static_cast<double>(share));
    if (!grants) return grants.error();
    for (std::size_t i = 0; i < members.size(); ++i) {
      split.max.push_back(static_cast<std::uint64_t>((*grants)[i]));
      split.high.push_back(std::min(members[i].wanted_high, split.max.back()));
    }
    return split;
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    split.max.push_back(static_cast<std::uint64_t>(claims[i].floor_cores));
    claims[i].wanted_cores = static_cast<double>(std::min(members[i].wanted_high, split.max.back()));
    claims[i].floor_cores = std::min(static_cast<double>(members[i].min_bytes), claims[i].wanted_cores);
  }
  auto highs = arbitration::arbitrate(claims, static_cast<double>(share));
  if (!highs) return highs.error();
  for (double h : *highs) split.high.push_back(static_cast<std::uint64_t>(h));
  return split;
}

}  // namespace

void Engine::share_group_memory(const std::string& group, const std::vector<Step*>& members, std::uint64_t share) {
  std::vector<MemoryClaim> claims;
  for (const auto* s : members) {
    const Container& c = *s->container;
    MemoryClaim m;
    m.usage = s->snapshot.memory_current.value_or(0);
    m.wanted_max = s->decision.limits.memory_max_bytes.value_or(policy::memory_ceiling(params_for(c.settings)));
    m.wanted_high = s->decision.limits.memory_high_bytes.value_or(m.wanted_max);
    m.min_bytes = c.settings.bounds.memory_min_bytes;
    m.weight = c.settings.weight;
    m.priority = c.settings.priority;
    claims.push_back(m);
  }
  auto split = split_memory(claims, share);
  if (!split) {
    spdlog::error("memory split of group {} failed: {}", group, split.error().to_string());
    return;
  }
  for (std::size_t i = 0; i < members.size(); ++i) {
    auto& limits = members[i]->decision.limits;
    const bool capped = split->max[i] < claims[i].wanted_max || split->high[i] < claims[i].wanted_high;
    if (split->max[i] < claims[i].wanted_max) limits.memory_max_bytes = split->max[i];
    if (split->high[i] < claims[i].wanted_high) limits.memory_high_bytes = split->high[i];
    if (capped) members[i]->decision.reason += "; budget group: memory capped to this node's share";
  }
  auto& reported = memory_shortfalls_[group];
  if ((reported == 0) != (split->shortfall == 0)) {
    if (split->shortfall > 0)
      spdlog::warn("budget group {}: its containers use {} MiB more memory than this node's share of {} MiB; "
                   "memory.high reclaims it, memory.max stays above usage",
                   group, split->shortfall >> 20, share >> 20);
    else
      spdlog::info("budget group {}: back within this node's memory share", group);
  }
  reported = split->shortfall;
}

void Engine::arbitrate(std::vector<Step>& steps) {
  // A budget group's containers share what ebb-manager gave this node for the group ...
  std::map<std::string, std::vector<Step*>> groups;
  for (auto& s : steps) {
    if (group_budgets_.count(s.container->settings.group)) groups[s.container->settings.group].push_back(&s);
  }
  for (auto& [group, members] : groups) {
    const GroupBudget& budget = group_budgets_.at(group);
    if (budget.cpu_cores) {
      std::vector<policy::Decision*> decisions;
      std::vector<const Container*> containers;
      for (auto* s : members) {
        decisions.push_back(&s->decision);
        containers.push_back(s->container);
      }
      cap(decisions, containers, *budget.cpu_cores, "budget group: capped to this node's share");
    }
    if (budget.memory_bytes) share_group_memory(group, members, *budget.memory_bytes);
  }
  // ... and all containers share the node's CPU (or the node budget).
  std::vector<policy::Decision*> decisions;
  std::vector<const Container*> members;
  for (auto& s : steps) {
    decisions.push_back(&s.decision);
    members.push_back(s.container);
  }
  cap(decisions, members, cpu_budget(), "node arbitration: capped to its share of the CPU budget");
}

void Engine::apply(Step& step, bool event_driven) {
  Container& c = *step.container;
  const auto writes = plan_writes(step.snapshot, step.decision.limits);
  if (writes.empty()) return;
  DecisionRecord record;
  record.at = std::chrono::system_clock::now();
  record.observation = c.last_observation;
  record.decision = step.decision;
  record.event_driven = event_driven;
  record.applied = !config_.dry_run && c.settings.mode == config::Mode::automatic;
  for (const auto& w : writes) {
    record.writes.push_back(w.describe());
    if (!record.applied) continue;
    if (auto status = control::apply(writer_, c.path, w); !status) {
      if (!status.error().vanished()) {
        record.error = status.error().to_string();
        report_error(c, status.error());
      }
      break;
    }
    ++c.limit_writes;
  }
  if (record.error.empty()) c.reported_error.clear();
  log_decision(c, record);
  notify([&](EngineListener& l) { l.on_decision(c, record); });
  c.history.push_back(std::move(record));
  if (c.history.size() > kHistory) c.history.pop_front();
}

void Engine::tick(const std::unordered_map<std::uint64_t, probes::CgroupCounters>* probe_counters) {
  ++ticks_;
  std::vector<Step> steps;
  steps.reserve(containers_.size());
  std::vector<std::string> vanished;
  for (auto& [path, c] : containers_) {
    const probes::CgroupCounters* counters = nullptr;
    if (probe_counters) {
      auto it = probe_counters->find(c.id);
      if (it != probe_counters->end()) counters = &it->second;
    }
    const auto freshness = c.last_snapshot ? tick_freshness(c.cpu_stat_moved, c.last_probe ? &*c.last_probe : nullptr, counters)
                                           : cgroup::Freshness::cadence;
    if (freshness == cgroup::Freshness::quiet) ++c.quiet_ticks;
    auto step = observe_and_decide(c, counters, false, freshness);
    if (step) steps.push_back(std::move(*step));
    else if (!fs_.cgroup_id(path).ok()) vanished.push_back(path);
  }
  arbitrate(steps);
  for (auto& step : steps) apply(step, false);
  for (const auto& path : vanished) {
    if (auto it = containers_.find(path); it != containers_.end()) drop(it, "removed", false);
  }
}

bool Engine::react(std::uint64_t cgroup_id, std::string_view why, SteadyTime now) {
  for (auto& [path, c] : containers_) {
    if (c.id != cgroup_id) continue;
    if (c.last_event_reaction != SteadyTime{} && now - c.last_event_reaction < config_.event_min_interval) {
      ++c.events_suppressed;
      return false;
    }
    c.last_event_reaction = now;
    // A decision for an event reads every file now: the cadence's carried values (a limit, PSI,
    // memory.events) are what the event says may have changed.
    auto step = observe_and_decide(c, nullptr, true, cgroup::Freshness::fresh);
    if (!step) return false;
    ++c.event_reactions;
    step->decision.reason = std::string(why) + ": " + step->decision.reason;
    // Without the other containers' decisions, stay inside what the node budget and the
    // group's CPU share leave free; a group's memory waits for the next tick, which sees every
    // member.
    const auto budget = group_budgets_.find(c.settings.group);
    const GroupBudget* group = budget == group_budgets_.end() ? nullptr : &budget->second;
    double others = 0, group_others = 0;
    for (const auto& [other_path, other] : containers_) {
      if (other_path == path || !other.last_snapshot) continue;
      const double cores = current_limits(*other.last_snapshot).cpu_cores.value_or(0);
      others += cores;
      if (group && other.settings.group == c.settings.group) group_others += cores;
    }
    const policy::Limits now_limits = current_limits(step->snapshot);
    const bool group_cpu = group && group->cpu_cores;
    if (step->decision.limits.cpu_cores || group_cpu) {
      double free = cpu_budget() - others;
      if (group_cpu) free = std::min(free, *group->cpu_cores - group_others);
      const double room = std::max(free, c.settings.bounds.cpu_min_cores);
      step->decision.limits.cpu_cores =
          std::min(step->decision.limits.cpu_cores.value_or(room), std::max(room, now_limits.cpu_cores.value_or(room)));
    }
    if (group && group->memory_bytes) {
      step->decision.limits.memory_high_bytes = now_limits.memory_high_bytes;
      step->decision.limits.memory_max_bytes = now_limits.memory_max_bytes;
    }
    apply(*step, true);
    return true;
  }
  return false;
}

void Engine::log_decision(const Container& c, const DecisionRecord& record) const {
  spdlog::debug("{}: {} [{}]", c.path, record.decision.reason, fmt::join(record.writes, " "));
  if (!config_.decision_log) return;
  std::ofstream out(*config_.decision_log, std::ios::app);
  out << to_json_line(c, record) << '\n';
}

std::string to_json_line(const Container& c, const DecisionRecord& r) {
  using nlohmann::json;
  const auto& o = r.observation;
  auto optional = [](const auto& v) { return v ? json(*v) : json(nullptr); };
  json j = {
      {"time_ms", std::chrono::duration_cast<std::chrono::milliseconds>(r.at.time_since_epoch()).count()},
      {"cgroup", c.path},
      {"name", c.name},
      {"source", r.decision.source},
      {"reason", r.decision.reason},
      {"event_driven", r.event_driven},
      {"applied", r.applied},
      {"writes", r.writes},
      {"cpu_limit_cores", optional(r.decision.limits.cpu_cores)},
      {"memory_high_bytes", optional(r.decision.limits.memory_high_bytes)},
      {"memory_max_bytes", optional(r.decision.limits.memory_max_bytes)},
      {"predicted_cpu_cores", optional(r.decision.predicted_cpu_cores)},
      {"observed",
       {{"cpu_usage_cores", o.cpu_usage_cores},
        {"cpu_throttled_periods", o.cpu_throttled_periods},
        {"cpu_limit_cores", optional(o.cpu_limit_cores)},
        {"memory_current_bytes", o.memory_current_bytes},
        {"memory_working_set_bytes", o.memory_working_set_bytes},
        {"oom_kill_events", o.oom_kill_events},
        {"runq_latency_p99_us", optional(o.runq_latency_p99_us)}}},
  };
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

}  // namespace ebb::control
