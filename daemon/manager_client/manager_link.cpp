#include "daemon/manager_client/manager_link.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "ebb/v1/manager.grpc.pb.h"

namespace ebb::manager_client {
namespace {

using Clock = std::chrono::steady_clock;

class EngineNode : public LocalNode {
 public:
  explicit EngineNode(control::Engine& engine) : engine_(engine) {}
  std::map<std::string, control::Engine::GroupDemand> group_demand() const override { return engine_.group_demand(); }
  void set_group_budget(const std::string& group, std::optional<control::Engine::GroupBudget> budget) override {
    engine_.set_group_budget(group, budget);
  }
  void set_node_budget(std::optional<double> cpu_cores) override { engine_.set_node_budget(cpu_cores); }

 private:
  control::Engine& engine_;
};

// "a:1,b:2" -> {"a:1", "b:2"}; never empty.
std::vector<std::string> split_targets(const std::string& list) {
  std::vector<std::string> out;
  std::string::size_type start = 0;
  while (start <= list.size()) {
    const auto comma = std::min(list.find(',', start), list.size());
    if (comma > start) out.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  if (out.empty()) out.push_back(list);
  return out;
}

ManagerLinkOptions with_engine_capacity(ManagerLinkOptions options, const control::Engine& engine) {
  if (options.cpu_cores <= 0) options.cpu_cores = engine.node().cpu_cores;
  if (options.memory_bytes == 0) options.memory_bytes = engine.node().memory_bytes;
  return options;
}

}  // namespace

struct ManagerLink::Shared : std::enable_shared_from_this<Shared> {
  Shared(boost::asio::io_context& io_, LocalNode& node_, ManagerLinkOptions options_)
      : io(io_), node(node_), options(std::move(options_)), targets(split_targets(options.manager)), timer(io_),
        report_interval(options.report_interval), lease(options.lease) {}

  boost::asio::io_context& io;
  LocalNode& node;
  const ManagerLinkOptions options;
  const std::vector<std::string> targets;  // the manager replicas
  std::size_t target = 0;                  // link thread only: the replica tried now
  boost::asio::steady_timer timer;
  std::atomic<bool> alive{true};  // cleared by stop(); handlers already posted check it

  // Shared between the link thread, the stream's reader thread and the io thread.
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  grpc::ClientContext* call = nullptr;     // the call in progress, for stop() to cancel
  std::optional<v1::NodeReport> demand;    // the latest report not yet sent
  std::chrono::milliseconds report_interval, lease;
  LinkStatus status;
  bool new_stream = false;  // no allocation applied on the current stream yet

  std::optional<Clock::time_point> allocation_at;  // io thread only

  void tick();
  void queue_report();
  void apply(const v1::NodeAllocation& allocation);
  void fall_back();
  bool session();
  void stream(v1::ManagerService::Stub& stub, std::uint64_t session_id);
  void set_call(grpc::ClientContext* ctx) {
    std::lock_guard lock(mu);
    call = ctx;
    if (ctx && stopping) ctx->TryCancel();
  }
};

// io thread: the demand and the round applied, for the link thread to send next.
void ManagerLink::Shared::queue_report() {
  v1::NodeReport report;
  for (const auto& [group, d] : node.group_demand()) {
    auto* g = report.add_groups();
    g->set_group(group);
    g->set_wanted_cpu_cores(d.wanted_cpu_cores);
    g->set_used_cpu_cores(d.used_cpu_cores);
    g->set_memory_bytes(d.memory_bytes);
    g->set_containers(static_cast<std::uint32_t>(d.containers));
  }
  {
    std::lock_guard lock(mu);
    report.set_applied_round(status.round);
    demand = std::move(report);
  }
  cv.notify_all();
}

// io thread: report every interval, and end an expired allocation.
void ManagerLink::Shared::tick() {
  if (!alive) return;
  queue_report();
  std::chrono::milliseconds interval;
  {
    std::lock_guard lock(mu);
    interval = report_interval;
  }
  if (allocation_at && Clock::now() - *allocation_at > lease) fall_back();
  timer.expires_after(interval);
  timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->tick();
  });
}

void ManagerLink::Shared::apply(const v1::NodeAllocation& allocation) {
  if (!alive) return;
  std::map<std::string, double> budgets;
  std::map<std::string, std::uint64_t> memory_budgets;
  for (const auto& g : allocation.groups()) {
    budgets[g.group()] = g.cpu_cores();
    // 0 is a group without a memory budget (the manager's default), not a share of nothing.
    if (g.memory_bytes() > 0) memory_budgets[g.group()] = g.memory_bytes();
  }
  std::map<std::string, double> before;
  std::map<std::string, std::uint64_t> memory_before;
  bool first_on_stream;
  {
    std::lock_guard lock(mu);
    before = status.group_budgets;
    memory_before = status.group_memory_budgets;
    first_on_stream = std::exchange(new_stream, false);
  }
  bool decreased = false;
  for (const auto& [group, cores] : budgets)
    if (auto it = before.find(group); it != before.end() && cores < it->second) decreased = true;
  for (const auto& [group, bytes] : memory_budgets)
    if (auto it = memory_before.find(group); it != memory_before.end() && bytes < it->second) decreased = true;
  for (const auto& [group, cores] : before)
    if (!budgets.count(group)) node.set_group_budget(group, std::nullopt);
  for (const auto& [group, cores] : budgets) {
    const auto memory = memory_budgets.find(group);
    node.set_group_budget(group, control::Engine::GroupBudget{
                                     cores, memory == memory_budgets.end() ? std::nullopt : std::optional(memory->second)});
  }
  node.set_node_budget(allocation.node_cpu_cores());
  if (!allocation_at || before.empty() != budgets.empty())
    spdlog::info("manager link: allocation of round {} in force ({} groups)", allocation.round(), budgets.size());
  allocation_at = Clock::now();
  {
    std::lock_guard lock(mu);
    status.group_budgets = std::move(budgets);
    status.group_memory_budgets = std::move(memory_budgets);
    status.node_budget = allocation.node_cpu_cores();
    status.round = allocation.round();
    status.local_only = false;
  }
  // A decrease is acknowledged at once, not at the next interval: the manager holds other
  // nodes' increases until this node has applied it. So is the first allocation on a stream:
  // until then the manager does not know what this node runs.
  if (decreased || first_on_stream) queue_report();
}

void ManagerLink::Shared::fall_back() {
  spdlog::warn("manager link: no allocation for {} ms, back to local-only control", lease.count());
  std::map<std::string, double> before;
  {
    std::lock_guard lock(mu);
    before = std::exchange(status.group_budgets, {});
    status.group_memory_budgets.clear();
    status.node_budget.reset();
    status.local_only = true;
    // A manager silent for a lease may be frozen with the stream still open: end the call so
    // that the link reconnects (to the next replica, if it has several).
    if (call) call->TryCancel();
  }
  for (const auto& [group, cores] : before) node.set_group_budget(group, std::nullopt);
  node.set_node_budget(std::nullopt);
  allocation_at.reset();
}

// Link thread: one registration and one stream; returns whether an allocation arrived (the
// backoff starts over then).
bool ManagerLink::Shared::session() {
  const std::string& address = targets[target];
  auto credentials = manager::channel_credentials_for(address, options.transport);
  if (!credentials) {
    std::lock_guard lock(mu);
    status.last_error = credentials.error().message;
    return false;
  }
  grpc::ChannelArguments args;
  // One connection per link, even when a load generator runs many links in one process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(address, *credentials, args);
  auto stub = v1::ManagerService::NewStub(channel);

  v1::RegisterRequest request;
  request.set_node_id(options.node_id);
  request.set_cpu_cores(options.cpu_cores);
  request.set_memory_bytes(options.memory_bytes);
  request.mutable_labels()->insert(options.labels.begin(), options.labels.end());
  v1::RegisterResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  set_call(&ctx);
  const auto registered = stub->Register(&ctx, request, &response);
  set_call(nullptr);
  if (!registered.ok()) {
    std::lock_guard lock(mu);
    status.last_error = "register: " + registered.error_message();
    return false;
  }
  {
    std::lock_guard lock(mu);
    if (response.report_interval_ms() > 0) report_interval = std::chrono::milliseconds(response.report_interval_ms());
    if (response.lease_ms() > 0) lease = std::chrono::milliseconds(response.lease_ms());
  }
  std::uint64_t before;
  {
    std::lock_guard lock(mu);
    before = status.round;
  }
  stream(*stub, response.session());
  std::lock_guard lock(mu);
  return status.round != before;
}

void ManagerLink::Shared::stream(v1::ManagerService::Stub& stub, std::uint64_t session_id) {
  grpc::ClientContext ctx;
  set_call(&ctx);
  auto rw = stub.Connect(&ctx);
  bool reading = true;
  std::thread reader([&] {
    v1::NodeAllocation allocation;
    while (rw->Read(&allocation))
      boost::asio::post(io, [self = shared_from_this(), allocation] { self->apply(allocation); });
    std::lock_guard lock(mu);
    reading = false;
    cv.notify_all();
  });
  {
    std::lock_guard lock(mu);
    status.connected = true;
    new_stream = true;
  }
  bool first = true;
  while (true) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stopping || !reading || demand; });
    if (stopping || !reading) break;
    v1::NodeReport report = std::move(*demand);
    demand.reset();
    lock.unlock();
    if (first) {
      report.set_node_id(options.node_id);
      report.set_session(session_id);
      first = false;
    }
    if (!rw->Write(report)) break;
  }
  {
    // A stream the manager ended keeps its status (a refused duplicate, say) for last_error;
    // one we end is cancelled.
    std::lock_guard lock(mu);
    if (reading) ctx.TryCancel();
  }
  reader.join();
  const auto finished = rw->Finish();
  set_call(nullptr);
  std::lock_guard lock(mu);
  status.connected = false;
  if (!finished.ok() && finished.error_code() != grpc::StatusCode::CANCELLED)
    status.last_error = "stream: " + finished.error_message();
}

void ManagerLink::run() {
  auto& s = *shared_;
  auto backoff = s.options.backoff_min;
  while (true) {
    const bool got_allocation = s.session();
    std::unique_lock lock(s.mu);
    if (s.stopping) return;
    if (!got_allocation) s.target = (s.target + 1) % s.targets.size();
    const bool tried_all = s.target == 0;
    if (got_allocation) backoff = s.options.backoff_min;
    else if (tried_all) backoff = std::min(backoff * 2, s.options.backoff_max);
    const auto wait = got_allocation || !tried_all ? s.options.backoff_min : backoff;
    ++s.status.reconnects;
    spdlog::info("manager link: reconnecting to {} in {} ms ({})", s.targets[s.target], wait.count(), s.status.last_error);
    if (s.cv.wait_for(lock, wait, [&] { return s.stopping; })) return;
  }
}

ManagerLink::ManagerLink(boost::asio::io_context& io, control::Engine& engine, ManagerLinkOptions options)
    : owned_(std::make_unique<EngineNode>(engine)),
      shared_(std::make_shared<Shared>(io, *owned_, with_engine_capacity(std::move(options), engine))) {}

ManagerLink::ManagerLink(boost::asio::io_context& io, LocalNode& node, ManagerLinkOptions options)
    : shared_(std::make_shared<Shared>(io, node, std::move(options))) {}

void ManagerLink::start() {
  boost::asio::post(shared_->io, [s = shared_] { s->tick(); });
  thread_ = std::thread([this] { run(); });
}

void ManagerLink::stop() {
  shared_->alive = false;
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
    if (shared_->call) shared_->call->TryCancel();
  }
  shared_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

ManagerLink::~ManagerLink() { stop(); }

LinkStatus ManagerLink::status() const {
  std::lock_guard lock(shared_->mu);
  return shared_->status;
}

}  // namespace ebb::manager_client
