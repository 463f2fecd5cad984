// ebbd: the node daemon. Everything below main() takes the cgroup root, state directory and
// settings from here; this is the only place the defaults of the real system are named.
#include <sched.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <thread>

#include "daemon/api/api.h"
#include "daemon/common/duration.h"
#include "daemon/config/config.h"
#include "daemon/control/engine.h"
#include "daemon/control/event_loop.h"
#include "daemon/control/state_store.h"
#include "daemon/learner/learner.h"
#include "daemon/policy/heuristic.h"
#include "daemon/probes/probe_command.h"
#include "daemon/main/cluster.h"

namespace {

using namespace ebb;

constexpr const char* kDefaultConfig = "/etc/ebb/ebbd.toml";

struct Flags {
  std::string config_file;
  std::string cgroup_root, state_dir, tick, log_level;
  std::string socket, tcp_listen, metrics_listen;
  std::vector<std::string> select;
  bool dry_run = false;
  bool once = false;
};

// Config file (if any), then flags on top, then validation.
Result<config::Config> build_config(const Flags& flags) {
  config::Config c;
  const std::string file = flags.config_file.empty() && ::access(kDefaultConfig, R_OK) == 0 ? kDefaultConfig
                                                                                             : flags.config_file;
  if (!file.empty()) {
    auto loaded = config::load_config(file);
    if (!loaded) return loaded.error();
    c = std::move(*loaded);
  }
  if (!flags.cgroup_root.empty()) c.cgroup_root = flags.cgroup_root;
  if (!flags.state_dir.empty()) c.state_dir = flags.state_dir;
  if (!flags.log_level.empty()) c.log_level = flags.log_level;
  if (!flags.select.empty()) c.select = flags.select;
  if (flags.dry_run) c.dry_run = true;
  if (!flags.socket.empty()) c.socket = flags.socket;
  if (!flags.tcp_listen.empty()) c.tcp_listen = flags.tcp_listen;
  if (!flags.metrics_listen.empty()) c.metrics_listen = flags.metrics_listen;
  if (!flags.tick.empty()) {
    auto tick = parse_duration(flags.tick);
    if (!tick) return Error{"--tick: " + tick.error().message};
    c.tick = *tick;
  }
  if (auto status = config::validate(c); !status) return status.error();
  return c;
}

control::NodeCapacity detect_node(const config::Config& c) {
  control::NodeCapacity node;
  cpu_set_t set;
  node.cpu_cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : std::thread::hardware_concurrency();
  node.memory_bytes = static_cast<std::uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  if (c.node_cpu_cores > 0) node.cpu_cores = c.node_cpu_cores;
  if (c.node_memory_bytes > 0) node.memory_bytes = c.node_memory_bytes;
  return node;
}

policy::ControllerFactory factory_for(const config::Config& c) {
  return c.policy == config::PolicyKind::learner ? learner::learner_factory() : policy::heuristic_factory();
}

// --once: two snapshots one tick apart, one decision per container, printed as JSON lines.
int run_once(control::Engine& engine, const config::Config& c) {
  engine.rescan();
  engine.tick();
  std::this_thread::sleep_for(c.tick);
  engine.tick();
  for (const auto& [path, container] : engine.containers()) {
    control::DecisionRecord record;
    if (!container.history.empty()) {
      record = container.history.back();
    } else if (container.last_decision) {
      record.at = std::chrono::system_clock::now();
      record.observation = container.last_observation;
      record.decision = *container.last_decision;
    } else {
      continue;
    }
    std::cout << control::to_json_line(container, record) << '\n';
  }
  for (const auto& [path, why] : engine.unmanageable()) {
    std::cout << nlohmann::json{{"cgroup", path}, {"unmanageable", why}}.dump() << '\n';
  }
  return 0;
}

std::unique_ptr<probes::ProbeSource> open_probes(const config::Config& c) {
  if (!c.probes) {
    spdlog::info("probes disabled by configuration; using cgroupfs statistics and PSI");
    return nullptr;
  }
  auto opened = probes::open_bpf_probes({});
  if (!opened) {
    spdlog::warn("eBPF probes unavailable ({}); using cgroupfs statistics and PSI", opened.error().to_string());
    return nullptr;
  }
  std::string active, inactive;
  for (const auto& s : (*opened)->status()) {
    (s.attached ? active : inactive) += (s.attached ? s.name : s.name + " (" + s.detail + ")") + " ";
  }
  spdlog::info("probes active: {}", active.empty() ? "none" : active);
  if (!inactive.empty()) spdlog::info("probes not attached: {}", inactive);
  return std::move(*opened);
}

// Keeps the probes' tracked set equal to the managed containers.
class ProbeTracking final : public control::EngineListener {
 public:
  explicit ProbeTracking(probes::ProbeSource* probes) : probes_(probes) {}
  void on_adopted(const control::Container& c) override {
    if (auto s = probes_->track(c.id); !s) spdlog::warn("cannot track {} in probes: {}", c.path, s.error().to_string());
    ids_[c.path] = c.id;
  }
  void on_dropped(const std::string& path, const std::string&) override {
    if (auto it = ids_.find(path); it != ids_.end()) {
      (void)probes_->untrack(it->second);
      ids_.erase(it);
    }
  }

 private:
  probes::ProbeSource* probes_;
  std::map<std::string, std::uint64_t> ids_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebbd: sub-second CPU and memory limits for cgroup v2 containers", "ebbd"};
  Flags flags;
  app.add_option("--config", flags.config_file, std::string("TOML config file (default ") + kDefaultConfig + " if present)");
  app.add_option("--cgroup-root", flags.cgroup_root, "cgroup v2 mount point (default /sys/fs/cgroup)");
  app.add_option("--select", flags.select, "glob of cgroups to manage, relative to the root; repeatable (default ebb.slice/*)");
  app.add_option("--tick", flags.tick, "control interval, 50ms to 10s (default 200ms)");
  app.add_flag("--dry-run", flags.dry_run, "decide and log, never write a limit");
  app.add_flag("--once", flags.once, "run one tick, print the decisions as JSON lines, exit");
  app.add_option("--state-dir", flags.state_dir, "where original limits are kept (default /var/lib/ebb)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error (default info)");
  app.add_option("--socket", flags.socket, "API unix socket (default /run/ebb/ebbd.sock)");
  app.add_option("--tcp-listen", flags.tcp_listen, "also serve the API on HOST:PORT (default off)");
  app.add_option("--metrics-listen", flags.metrics_listen, "Prometheus metrics on HOST:PORT[/PATH] (default off)");
  app.set_version_flag("--version", std::string("ebbd ") + EBB_VERSION);

  cluster::Flags cluster_flags;
  cluster::add_flags(app, cluster_flags);

  auto* probe = app.add_subcommand("probe", "attach the eBPF probes to the selected cgroups, print what they saw, exit");
  std::string probe_duration = "5s", probe_output = "table";
  probe->add_option("--duration", probe_duration, "how long to watch (default 5s)");
  probe->add_option("-o,--output", probe_output, "table or json")->check(CLI::IsMember({"table", "json"}));
  probe->add_option("--config", flags.config_file, "TOML config file");
  probe->add_option("--cgroup-root", flags.cgroup_root, "cgroup v2 mount point");
  probe->add_option("--select", flags.select, "glob of cgroups to probe; repeatable");
  CLI11_PARSE(app, argc, argv);

  if (*probe) {
    auto configured = build_config(flags);
    auto duration = parse_duration(probe_duration);
    if (!configured || !duration) {
      std::fprintf(stderr, "ebbd probe: %s\n",
                   (!configured ? configured.error() : Error{"--duration: " + duration.error().message}).to_string().c_str());
      return 2;
    }
    probes::ProbeCommandOptions options;
    options.cgroup_root = configured->cgroup_root;
    options.selectors = configured->select;
    options.duration = *duration;
    options.json = probe_output == "json";
    return probes::run_probe_command(options, std::cout, std::cerr);
  }

  if (!cluster_flags.simulate.empty()) return cluster::run_simulated(cluster_flags);

  auto logger = spdlog::stderr_color_mt("ebbd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  auto configured = build_config(flags);
  if (!configured) {
    std::fprintf(stderr, "ebbd: %s\n", configured.error().to_string().c_str());
    return 2;
  }
  config::Config c = std::move(*configured);
  spdlog::set_level(spdlog::level::from_str(c.log_level));

  std::error_code ec;
  if (!std::filesystem::is_directory(c.cgroup_root, ec)) {
    std::fprintf(stderr, "ebbd: cgroup root %s is not a directory\n", c.cgroup_root.c_str());
    return 2;
  }
  auto state = control::StateStore::open(c.state_dir);
  if (!state) {
    std::fprintf(stderr, "ebbd: %s\n", state.error().to_string().c_str());
    return 2;
  }

  const auto node = detect_node(c);
  // Every tick snapshots the same cgroups: the cadence keeps cpu.stat and memory.current open,
  // re-reads the other files when due, and skips the cgroups the probes show idle (docs/probes.md).
  cgroup::CgroupFs fs(c.cgroup_root, flags.once ? cgroup::ReadCadence{} : cgroup::ReadCadence::daemon());
  control::Engine engine(c, node, fs, fs, &*state, factory_for(c));
  if (flags.once) return run_once(engine, c);

  spdlog::info("ebbd {} managing {} under {} every {} with the {} policy{} (node: {} CPUs, {})", EBB_VERSION,
               fmt::join(c.select, ", "), c.cgroup_root.string(), format_duration(c.tick), config::to_string(c.policy),
               c.dry_run ? ", dry run" : "", node.cpu_cores, format_bytes(node.memory_bytes));

  auto probes = open_probes(c);
  std::optional<ProbeTracking> tracking;
  if (probes) {
    tracking.emplace(probes.get());
    engine.add_listener(&*tracking);
  }

  boost::asio::io_context io;
  api::NodeInfo info{EBB_VERSION};
  if (probes) info.probes = probes->status();
  auto served = api::Api::start(io, engine, c, std::move(info));
  if (!served) {
    std::fprintf(stderr, "ebbd: %s\n", served.error().to_string().c_str());
    return 2;
  }
  control::LoopHooks hooks;
  hooks.reload = [&flags]() { return build_config(flags); };
  hooks.after_tick = [api = served->get()] { api->after_tick(); };
  auto link = cluster::connect(cluster_flags, io, engine);
  if (!link) {
    std::fprintf(stderr, "ebbd: %s\n", link.error().to_string().c_str());
    return 2;
  }
  control::EventLoop loop(io, engine, probes.get(), hooks);
  if (auto status = loop.run(); !status) {
    spdlog::critical("{}", status.error().to_string());
    return 1;
  }
  return 0;
}
