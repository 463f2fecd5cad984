#pragma once
// ebbd's link to ebb-manager. It registers the node, reports the budget groups' demand every
// report interval over one Connect stream, and applies the allocations it receives as per-group
// CPU and memory budgets and a node budget. gRPC runs on the link's own threads; every call into the node
// (the Engine) is posted to the daemon's io_context, so the control loop never blocks on the
// network and the Engine stays single-threaded.
//
// Failure semantics: when the manager is unreachable the node keeps its last allocation until
// the lease (as the manager announced it at registration) has passed since the last allocation
// arrived, then falls back to local-only control (every group budget cleared, the node budget
// back to its capacity); meanwhile it reconnects with exponential backoff. Given several
// manager replicas (etcd mode), it tries them in turn, and backs off only once every one failed.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "daemon/control/engine.h"
#include "manager/tls/tls.h"

namespace ebb::manager_client {

// What the link drives: demand out, budgets in. Called on the io_context's thread only.
class LocalNode {
 public:
  virtual ~LocalNode() = default;
  virtual std::map<std::string, control::Engine::GroupDemand> group_demand() const = 0;
  virtual void set_group_budget(const std::string& group, std::optional<control::Engine::GroupBudget> budget) = 0;
  virtual void set_node_budget(std::optional<double> cpu_cores) = 0;
};

struct ManagerLinkOptions {
  std::string manager;                      // "host:port", or several "a:p,b:p" replicas tried in turn
  std::string node_id;
  manager::Transport transport;             // mTLS files, or explicit loopback plaintext
  double cpu_cores = 0;                     // capacity to register; 0: the engine's
  std::uint64_t memory_bytes = 0;
  std::map<std::string, std::string> labels;
  // Used until the manager announces its own at registration.
  std::chrono::milliseconds report_interval{500};
  std::chrono::milliseconds lease{10000};
  std::chrono::milliseconds backoff_min{200};
  std::chrono::milliseconds backoff_max{5000};
};

// What the link is doing, for logs, the node API and tests.
struct LinkStatus {
  bool connected = false;
  bool local_only = true;        // no allocation in force (never had one, or the lease ended)
  std::uint64_t round = 0;       // of the allocation in force
  std::map<std::string, double> group_budgets;  // cores, as applied
  std::map<std::string, std::uint64_t> group_memory_budgets;  // bytes, for groups with a memory budget
  std::optional<double> node_budget;
  std::uint64_t reconnects = 0;
  std::string last_error;
};

class ManagerLink {
 public:
  ManagerLink(boost::asio::io_context& io, control::Engine& engine, ManagerLinkOptions options);
  ManagerLink(boost::asio::io_context& io, LocalNode& node, ManagerLinkOptions options);
  ~ManagerLink();
  ManagerLink(const ManagerLink&) = delete;
  ManagerLink& operator=(const ManagerLink&) = delete;

  // Starts the link thread and the report timer. Call once.
  void start();
  // Cancels the stream, joins the link thread and stops touching the node. The budgets in force
  // stay (the daemon decides what to do on shutdown). Idempotent; safe from the io thread.
  void stop();
  LinkStatus status() const;

  struct Shared;

 private:
  void run();
  std::unique_ptr<LocalNode> owned_;  // the Engine adapter, when built from an Engine
  std::shared_ptr<Shared> shared_;
  std::thread thread_;  // the link thread: registration, the stream's writes, backoff
};

}  // namespace ebb::manager_client
