#pragma once
// ebb-manager's gRPC front: the ManagerService handlers (callback API, so a thousand node
// streams do not need a thousand threads) as thin translations to manager::Manager, plus the
// round loop thread that runs due rounds and pushes their results to the node streams and the
// WatchAllocations watchers. A replica's round loop also relays: as the leader it takes in the
// nodes streaming to followers and stores their messages; as a follower it publishes its nodes
// and sends them the leader's messages.
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "daemon/common/error.h"
#include "manager/core/manager.h"
#include "manager/core/relay.h"

namespace ebb::manager {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::chrono::milliseconds poll{20};  // how often the round loop checks whether a round is due
  // Replicas: node streams on followers (manager/core/relay.h); null for a single manager.
  Relay* relay = nullptr;
  std::chrono::milliseconds relay_interval{100};   // how often reports and messages are exchanged
  std::chrono::milliseconds relay_heartbeat{500};  // a follower publishes at least this often
};

class ManagerServer {
 public:
  // Binds, starts the service and the round loop. `manager` must outlive the server.
  static Result<std::unique_ptr<ManagerServer>> start(Manager& manager, const ServerOptions& options);
  ~ManagerServer();
  ManagerServer(const ManagerServer&) = delete;
  ManagerServer& operator=(const ManagerServer&) = delete;

  int port() const;
  // Stops the round loop, cancels the streams and waits for the handlers. Idempotent.
  void shutdown();
  // Blocks until shutdown() (from another thread or a signal handler's thread).
  void wait();

  struct Impl;

 private:
  explicit ManagerServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ebb::manager
