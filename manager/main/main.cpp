// ebb-manager: `serve` runs the manager; the other subcommands are its orchestrator API from
// the command line (JSON out), for operators and the tests.
#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "daemon/common/duration.h"
#include "daemon/config/config.h"
#include "manager/config/config.h"
#include "manager/service/client.h"
#include "manager/service/convert.h"
#include "manager/service/server.h"

namespace {

using namespace ebb;
using namespace ebb::manager;

int fail(const std::string& message) {
  std::cerr << "ebb-manager: " << message << "\n";
  return 1;
}

std::string json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

// Applies the schedule's cap whenever it changes (once a minute at most, checked every second).
void follow_schedule(Manager& manager, std::vector<CapChange> schedule, const std::atomic<bool>& stop) {
  std::optional<std::optional<double>> applied;
  while (!stop) {
    const auto now = std::chrono::system_clock::now();
    const auto day = std::chrono::floor<std::chrono::days>(now);
    const auto cap = cap_at(schedule, std::chrono::duration_cast<std::chrono::minutes>(now - day));
    if (applied != cap) {
      if (auto s = manager.set_cluster_cap(cap); !s) spdlog::error("cap schedule: {}", s.error().message);
      spdlog::info("cluster cap from the schedule: {}", cap ? std::to_string(*cap) + " cores" : "none");
      applied = cap;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int serve(const std::string& config_file, const std::string& listen) {
  auto config = load_manager_config(config_file);
  if (!config) return fail(config.error().to_string());
  if (!listen.empty()) config->listen = listen;
  std::vector<CapChange> schedule;
  if (config->cap_schedule) {
    std::ifstream in(*config->cap_schedule);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) return fail("cannot read the cap schedule " + config->cap_schedule->string());
    auto parsed = parse_cap_schedule(text.str(), config->cap_schedule->string());
    if (!parsed) return fail(parsed.error().to_string());
    schedule = std::move(*parsed);
  }
  std::unique_ptr<StateStorage> storage;
  std::unique_ptr<etcd::Election> election;
  std::unique_ptr<etcd::EtcdRelay> relay;
  if (config->etcd) {
    const auto& advertise = config->etcd->advertise.empty() ? config->listen : config->etcd->advertise;
    election = std::make_unique<etcd::Election>(*config->etcd, advertise);
    storage = std::make_unique<etcd::EtcdStateStorage>(*config->etcd, *election);
    relay = std::make_unique<etcd::EtcdRelay>(*config->etcd, *election);
  } else if (config->state_file) {
    storage = std::make_unique<FileStateStorage>(*config->state_file);
  } else {
    storage = std::make_unique<MemoryStateStorage>();
  }
  Manager manager(config->options, storage.get(), election.get());
  if (auto s = manager.restore(Clock::now()); !s) {
    // A replica loads the stored state again before it leads, and while it follows.
    if (!election) return fail(s.error().to_string());
    spdlog::warn("the state stored in etcd is not loaded yet: {}", s.error().to_string());
  }
  auto credentials = server_credentials_for(config->listen, config->transport);
  if (!credentials) return fail(credentials.error().to_string());

  // Signals are taken by sigwait below, not by handlers on gRPC's threads.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServerOptions server_options{config->listen, *credentials};
  server_options.relay = relay.get();
  auto server = ManagerServer::start(manager, server_options);
  if (!server) return fail(server.error().to_string());
  spdlog::info("ebb-manager listening on {} (port {}, {}), {} groups restored{}", config->listen, (*server)->port(),
               config->transport.plaintext ? "plaintext loopback" : "mutual TLS", manager.groups().size(),
               election ? ", a replica on etcd" : "");
  if (election) election->start();  // only once nodes sent here can reach us
  std::atomic<bool> stop{false};
  std::thread scheduler;
  if (!schedule.empty()) scheduler = std::thread(follow_schedule, std::ref(manager), schedule, std::cref(stop));
  int signal = 0;
  sigwait(&signals, &signal);
  spdlog::info("ebb-manager: signal {}, stopping", signal);
  stop = true;
  if (scheduler.joinable()) scheduler.join();
  if (election) election->stop();  // hands the leadership over before the streams end
  (*server)->shutdown();
  return 0;
}

struct ClientFlags {
  std::string manager = "127.0.0.1:7070";
  std::string cert, key, ca;
  bool plaintext = false;
};

void add_client_flags(CLI::App* cmd, ClientFlags& f) {
  cmd->add_option("--manager", f.manager, "manager address host:port, or replicas a:p,b:p tried in turn");
  cmd->add_option("--tls-cert", f.cert, "client certificate (PEM)");
  cmd->add_option("--tls-key", f.key, "client key (PEM)");
  cmd->add_option("--tls-ca", f.ca, "CA of the manager's certificate (PEM)");
  cmd->add_flag("--plaintext", f.plaintext, "no TLS (loopback only)");
}

// "a:1,b:2" -> {"a:1", "b:2"}: the replicas of a manager on etcd.
std::vector<std::string> addresses(const std::string& list) {
  std::vector<std::string> out;
  std::istringstream in(list);
  for (std::string one; std::getline(in, one, ',');)
    if (!one.empty()) out.push_back(one);
  return out;
}

// Runs one unary call and prints its response as JSON. Given several replicas, asks each in
// turn until one answers (a replica that does not lead refuses writes, naming the leader).
template <typename Req, typename Resp>
int unary(const ClientFlags& f, grpc::Status (v1::ManagerService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
          const Req& req) {
  std::string failures;
  for (const auto& address : addresses(f.manager)) {
    auto stub = connect_manager(address, {{f.cert, f.key, f.ca}, f.plaintext});
    if (!stub) return fail(stub.error().to_string());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    Resp resp;
    auto status = ((**stub).*method)(&ctx, req, &resp);
    if (status.ok()) {
      std::cout << json(resp) << "\n";
      return 0;
    }
    failures += (failures.empty() ? "" : "; ") + address + ": " + status.error_message();
  }
  return fail(failures);
}

int watch(const ClientFlags& f, int count) {
  if (addresses(f.manager).size() > 1) return fail("watch takes one replica: each sends only the rounds it allocates");
  auto stub = connect_manager(f.manager, {{f.cert, f.key, f.ca}, f.plaintext});
  if (!stub) return fail(stub.error().to_string());
  grpc::ClientContext ctx;
  auto reader = (*stub)->WatchAllocations(&ctx, v1::WatchAllocationsRequest{});
  v1::AllocationRound round;
  for (int i = 0; (count <= 0 || i < count) && reader->Read(&round); ++i) std::cout << json(round) << std::endl;
  ctx.TryCancel();
  auto status = reader->Finish();
  return status.ok() || status.error_code() == grpc::StatusCode::CANCELLED ? 0 : fail(status.error_message());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ebb-manager: cluster-wide CPU and memory budgets for ebbd nodes"};
  app.require_subcommand(1);

  std::string config_file, listen;
  auto* serve_cmd = app.add_subcommand("serve", "run the manager");
  serve_cmd->add_option("-c,--config", config_file, "TOML config (docs/manager.md)")->required();
  serve_cmd->add_option("--listen", listen, "override [manager] listen");

  ClientFlags flags;
  std::string name, memory = "0", priority = "burstable";
  double cpus = 0, floor = 0, cap = 0;
  int count = 0;
  auto* set_group = app.add_subcommand("set-group", "create or change a budget group");
  set_group->add_option("name", name)->required();
  set_group->add_option("--cpus", cpus, "cluster-wide CPU budget in cores")->required();
  set_group->add_option("--memory", memory, "cluster-wide memory budget, e.g. 64G");
  set_group->add_option("--priority", priority, "guaranteed, burstable or best-effort");
  set_group->add_option("--floor", floor, "cores a guaranteed group keeps under a cluster cap");
  auto* get_group = app.add_subcommand("get-group", "one group");
  get_group->add_option("name", name)->required();
  auto* groups = app.add_subcommand("groups", "every group");
  auto* nodes = app.add_subcommand("nodes", "every node");
  auto* watch_cmd = app.add_subcommand("watch", "one JSON line per allocation round");
  watch_cmd->add_option("--count", count, "stop after this many rounds (0: never)");
  auto* set_cap = app.add_subcommand("set-cap", "cluster-wide CPU cap in cores (0: none)");
  set_cap->add_option("cores", cap)->required();
  for (auto* cmd : {set_group, get_group, groups, nodes, watch_cmd, set_cap}) add_client_flags(cmd, flags);
  CLI11_PARSE(app, argc, argv);

  if (*serve_cmd) return serve(config_file, listen);
  if (*watch_cmd) return watch(flags, count);
  if (*set_group) {
    auto bytes = ebb::parse_bytes(memory);
    if (!bytes) return fail("--memory: " + bytes.error().message);
    auto klass = ebb::config::parse_priority(priority);
    if (!klass) return fail("--priority must be guaranteed, burstable or best-effort");
    v1::SetGroupBudgetRequest req;
    req.mutable_group()->set_name(name);
    req.mutable_group()->set_cpu_cores(cpus);
    req.mutable_group()->set_memory_bytes(*bytes);
    req.mutable_group()->set_priority(to_proto(*klass));
    req.mutable_group()->set_floor_cpu_cores(floor);
    return unary(flags, &v1::ManagerService::Stub::SetGroupBudget, req);
  }
  if (*get_group) {
    v1::GetGroupRequest req;
    req.set_name(name);
    return unary(flags, &v1::ManagerService::Stub::GetGroup, req);
  }
  if (*groups) return unary(flags, &v1::ManagerService::Stub::ListGroups, v1::ListGroupsRequest{});
  if (*nodes) return unary(flags, &v1::ManagerService::Stub::ListNodes, v1::ListNodesRequest{});
  v1::SetClusterCapRequest req;
  req.set_cpu_cores(cap);
  return unary(flags, &v1::ManagerService::Stub::SetClusterCap, req);
}
