// ebbctl: look at and steer what ebbd does on this node, over its NodeService socket.
// Exit codes: 0 ok, 1 ebbd refused or failed the request, 2 usage error, 3 ebbd unreachable.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "cli/client.h"
#include "cli/format.h"
#include "daemon/common/duration.h"

namespace {

using namespace ebb;

enum Exit { kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3 };

struct Global {
  std::string socket = "/run/ebb/ebbd.sock";
  std::string output = "table";
  std::chrono::milliseconds timeout{10000};
  bool json() const { return output == "json"; }
};

class Failure {
 public:
  Failure(int code, std::string message) : code(code), message(std::move(message)) {}
  int code;
  std::string message;
};

// Commands throw Failure for the few ways out that are not success; main prints it once.
void check(const grpc::Status& status, const Global& g) {
  if (status.ok()) return;
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    throw Failure(kUnreachable, "ebbd at " + g.socket + " did not answer within " + format_duration(g.timeout) +
                                    " (a busy node? --timeout sets how long to wait)");
  }
  const int code = status.error_code() == grpc::StatusCode::UNAVAILABLE ? kUnreachable : kFailed;
  throw Failure(code, cli::describe(status, g.socket));
}

std::unique_ptr<v1::NodeService::Stub> stub_for(const Global& g) {
  auto stub = cli::connect(g.socket);
  if (!stub) throw Failure(kUnreachable, stub.error().message);
  return std::move(*stub);
}

// Unary calls get a deadline (--timeout): a wedged daemon must not hang a script.
std::unique_ptr<grpc::ClientContext> context(const Global& g) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + g.timeout);
  return ctx;
}

v1::ListContainersResponse list(v1::NodeService::Stub& stub, const Global& g, const std::string& select) {
  v1::ListContainersRequest request;
  request.set_select(select);
  v1::ListContainersResponse response;
  check(stub.ListContainers(context(g).get(), request, &response), g);
  return response;
}

void print(const Global& g, const google::protobuf::Message& message, const std::string& text) {
  std::cout << (g.json() ? cli::to_json(message) + "\n" : text) << std::flush;
}

int ps(const Global& g, const std::string& select) {
  auto stub = stub_for(g);
  const auto response = list(*stub, g, select);
  print(g, response, cli::ps_table(response));
  return kOk;
}

int top(const Global& g, const std::string& select, const std::string& interval_text, int iterations) {
  auto interval = parse_duration(interval_text);
  if (!interval) throw Failure(kUsage, "--interval: " + interval.error().message);
  auto stub = stub_for(g);
  const bool tty = ::isatty(STDOUT_FILENO);
  for (int i = 0; iterations == 0 || i < iterations; ++i) {
    if (i > 0) std::this_thread::sleep_for(*interval);
    v1::Node node;
    check(stub->GetNode(context(g).get(), {}, &node), g);
    auto response = list(*stub, g, select);
    // Busiest first, as top does.
    std::sort(response.mutable_containers()->begin(), response.mutable_containers()->end(),
              [](const v1::Container& a, const v1::Container& b) {
                return a.usage().cpu_usage_cores() > b.usage().cpu_usage_cores();
              });
    if (tty && !g.json()) std::cout << "\033[H\033[2J";
    print(g, response, cli::node_summary(node) + "\n" + cli::ps_table(response));
  }
  return kOk;
}

int inspect(const Global& g, const std::string& name, unsigned decisions) {
  auto stub = stub_for(g);
  v1::GetContainerRequest request;
  request.set_name(name);
  request.set_decisions(decisions);
  v1::ContainerDetail detail;
  check(stub->GetContainer(context(g).get(), request, &detail), g);
  print(g, detail, cli::inspect(detail));
  return kOk;
}

int node(const Global& g) {
  auto stub = stub_for(g);
  v1::Node response;
  check(stub->GetNode(context(g).get(), {}, &response), g);
  print(g, response, cli::node_summary(response));
  return kOk;
}

void print_event(const Global& g, const v1::Event& event) { print(g, event, cli::event_line(event) + "\n"); }

// Without -f: the recent decisions every container keeps, oldest first.
int recent_events(const Global& g, const std::string& select, unsigned limit) {
  auto stub = stub_for(g);
  std::vector<v1::Event> events;
  const auto containers = list(*stub, g, select);
  for (const auto& c : containers.containers()) {
    v1::GetContainerRequest request;
    request.set_name(c.path());
    request.set_decisions(limit);
    v1::ContainerDetail detail;
    const auto status = stub->GetContainer(context(g).get(), request, &detail);
    if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // dropped meanwhile
    check(status, g);
    for (const auto& d : detail.decisions()) {
      v1::Event e;
      e.set_kind(d.event_driven() ? v1::EVENT_KIND_STARVATION : v1::EVENT_KIND_DECISION);
      *e.mutable_at() = d.at();
      e.set_path(c.path());
      e.set_name(c.name());
      *e.mutable_decision() = d;
      events.push_back(std::move(e));
    }
  }
  std::sort(events.begin(), events.end(), [](const v1::Event& a, const v1::Event& b) {
    return std::pair(a.at().seconds(), a.at().nanos()) < std::pair(b.at().seconds(), b.at().nanos());
  });
  const std::size_t skip = events.size() > limit ? events.size() - limit : 0;
  for (std::size_t i = skip; i < events.size(); ++i) print_event(g, events[i]);
  return kOk;
}

int follow_events(const Global& g, const std::string& select, const std::vector<std::string>& kinds, unsigned count) {
  auto stub = stub_for(g);
  v1::WatchEventsRequest request;
  request.set_select(select);
  for (const auto& k : kinds) {
    v1::EventKind kind = v1::EVENT_KIND_UNSPECIFIED;
    for (int i = v1::EventKind_MIN + 1; i <= v1::EventKind_MAX; ++i) {
      if (cli::event_kind_name(static_cast<v1::EventKind>(i)) == k) kind = static_cast<v1::EventKind>(i);
    }
    request.add_kinds(kind);
  }
  grpc::ClientContext ctx;
  auto reader = stub->WatchEvents(&ctx, request);
  v1::Event event;
  unsigned seen = 0;
  while ((count == 0 || seen < count) && reader->Read(&event)) {
    print_event(g, event);
    ++seen;
  }
  if (count != 0 && seen == count) {
    ctx.TryCancel();
    return kOk;
  }
  check(reader->Finish(), g);
  return kOk;
}

struct SetFlags {
  std::string name, select, mode, priority, memory_min, memory_max, group;
  std::optional<double> cpu_min, cpu_max, throttle_target, runq_target, weight;
  bool reset = false;
};

std::uint64_t bytes_flag(const std::string& flag, const std::string& text) {
  auto bytes = parse_bytes(text);
  if (!bytes) throw Failure(kUsage, flag + ": " + bytes.error().message);
  return *bytes;
}

int set(const Global& g, const SetFlags& f) {
  if (f.name.empty() == f.select.empty()) throw Failure(kUsage, "set: give a container NAME or --select GLOB (one of them)");
  v1::SetPolicyRequest request;
  if (!f.name.empty()) request.set_container(f.name);
  else request.set_select(f.select);
  request.set_reset(f.reset);
  auto& s = *request.mutable_settings();
  if (!f.mode.empty()) {
    s.set_mode(f.mode == "auto" ? v1::MODE_AUTO : f.mode == "recommend" ? v1::MODE_RECOMMEND : v1::MODE_OFF);
  }
  if (!f.priority.empty()) {
    s.set_priority(f.priority == "guaranteed"  ? v1::PRIORITY_CLASS_GUARANTEED
                   : f.priority == "burstable" ? v1::PRIORITY_CLASS_BURSTABLE
                                               : v1::PRIORITY_CLASS_BEST_EFFORT);
  }
  if (f.cpu_min) s.set_cpu_min_cores(*f.cpu_min);
  if (f.cpu_max) s.set_cpu_max_cores(*f.cpu_max);
  if (!f.memory_min.empty()) s.set_memory_min_bytes(bytes_flag("--memory-min", f.memory_min));
  if (!f.memory_max.empty()) s.set_memory_max_bytes(bytes_flag("--memory-max", f.memory_max));
  if (f.throttle_target) s.set_throttle_target(*f.throttle_target);
  if (f.runq_target) s.set_runq_latency_p99_target_us(*f.runq_target);
  if (f.weight) s.set_weight(*f.weight);
  if (!f.group.empty()) s.set_group(f.group);
  auto stub = stub_for(g);
  v1::SetPolicyResponse response;
  check(stub->SetPolicy(context(g).get(), request, &response), g);
  std::string text = "policy stored for " + response.select() + "; ";
  if (response.matched().empty()) {
    text += "it applies to no managed container yet\n";
  } else {
    text += "it applies now to";
    for (const auto& m : response.matched()) text += " " + m;
    text += "\n";
  }
  print(g, response, text);
  return kOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebbctl: see and steer ebbd, the node's CPU and memory limit manager", "ebbctl"};
  app.require_subcommand(1);
  Global g;
  app.add_option("--socket", g.socket, "ebbd's API socket (default /run/ebb/ebbd.sock)");
  app.add_option("-o,--output", g.output, "table or json (protobuf's JSON mapping)")
      ->check(CLI::IsMember({"table", "json"}));
  std::string timeout = "10s";
  app.add_option("--timeout", timeout, "how long to wait for each answer from ebbd (default 10s; not for events -f)");
  std::function<int()> run;

  std::string select;
  auto* ps_cmd = app.add_subcommand("ps", "list the managed containers: limits, usage, throttling, latency, memory");
  ps_cmd->add_option("--select", select, "only containers whose path or name matches this glob");
  ps_cmd->callback([&] { run = [&] { return ps(g, select); }; });

  std::string interval = "1s";
  int iterations = 0;
  auto* top_cmd = app.add_subcommand("top", "the ps table, refreshed, busiest first");
  top_cmd->add_option("--select", select, "only containers whose path or name matches this glob");
  top_cmd->add_option("--interval", interval, "time between refreshes (default 1s)");
  top_cmd->add_option("--iterations", iterations, "stop after N refreshes (default 0: until interrupted)")
      ->check(CLI::NonNegativeNumber);
  top_cmd->callback([&] { run = [&] { return top(g, select, interval, iterations); }; });

  std::string name;
  unsigned decisions = 10;
  auto* inspect_cmd = app.add_subcommand("inspect", "one container in detail, with its recent decisions in words");
  inspect_cmd->add_option("NAME", name, "container name or path")->required();
  inspect_cmd->add_option("--decisions", decisions, "how many recent decisions (default 10)");
  inspect_cmd->callback([&] { run = [&] { return inspect(g, name, decisions); }; });

  bool follow = false;
  unsigned limit = 20, count = 0;
  std::vector<std::string> kinds;
  auto* events_cmd = app.add_subcommand("events", "recent decisions; with -f, every event as it happens");
  events_cmd->add_flag("-f,--follow", follow, "stream events until interrupted");
  events_cmd->add_option("--select", select, "only containers whose path or name matches this glob");
  events_cmd->add_option("--kind", kinds, "with -f: decision, starvation, oom-kill, adopted, dropped; repeatable")
      ->check(CLI::IsMember({"decision", "starvation", "oom-kill", "adopted", "dropped"}));
  events_cmd->add_option("--limit", limit, "without -f: how many recent decisions (default 20)");
  events_cmd->add_option("--count", count, "with -f: exit after N events (default 0: never)");
  events_cmd->callback([&] {
    run = [&] { return follow ? follow_events(g, select, kinds, count) : recent_events(g, select, limit); };
  });

  SetFlags f;
  auto* set_cmd = app.add_subcommand("set", "set a container's policy (or a selector's); kept across ebbd restarts");
  set_cmd->add_option("NAME", f.name, "container name or path");
  set_cmd->add_option("--select", f.select, "a glob over cgroup paths, also for containers not yet adopted");
  set_cmd->add_option("--mode", f.mode, "auto (write limits), recommend (decide only), off")
      ->check(CLI::IsMember({"auto", "recommend", "off"}));
  set_cmd->add_option("--cpu-min", f.cpu_min, "lowest CPU limit, cores");
  set_cmd->add_option("--cpu-max", f.cpu_max, "highest CPU limit, cores (0: the node's)");
  set_cmd->add_option("--memory-min", f.memory_min, "lowest memory limit, e.g. 64M");
  set_cmd->add_option("--memory-max", f.memory_max, "highest memory limit, e.g. 2G (0: the node's)");
  set_cmd->add_option("--throttle-target", f.throttle_target, "share of CFS periods allowed to throttle, 0..1");
  set_cmd->add_option("--runq-target", f.runq_target, "run-queue latency p99 target, microseconds");
  set_cmd->add_option("--priority", f.priority, "guaranteed, burstable or best-effort")
      ->check(CLI::IsMember({"guaranteed", "burstable", "best-effort"}));
  set_cmd->add_option("--weight", f.weight, "share within its priority class");
  set_cmd->add_option("--group", f.group, "budget group (ebb-manager)");
  set_cmd->add_flag("--reset", f.reset, "forget earlier settings made through the API for this target first");
  set_cmd->callback([&] { run = [&] { return set(g, f); }; });

  auto* node_cmd = app.add_subcommand("node", "the node: capacity, budget, probes, ebbd's version and uptime");
  node_cmd->callback([&] { run = [&] { return node(g); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  }
  try {
    auto parsed = parse_duration(timeout);
    if (!parsed || *parsed <= std::chrono::milliseconds(0)) {
      throw Failure(kUsage, "--timeout: " + (parsed ? std::string("must be positive") : parsed.error().message));
    }
    g.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*parsed);
    return run();
  } catch (const Failure& failure) {
    std::cerr << "ebbctl: " << failure.message << '\n';
    return failure.code;
  }
}
