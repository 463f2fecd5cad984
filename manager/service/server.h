#pragma once
// ebb-manager's gRPC front: the ManagerService handlers (callback API, so a thousand node
// streams do not need a thousand threads) as thin translations to manager::Manager, plus the
// round loop thread that runs due rounds and pushes their results to the node streams and the
// WatchAllocations watchers.
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "daemon/common/error.h"
#include "manager/core/manager.h"

namespace ebb::manager {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::chrono::milliseconds poll{20};  // how often the round loop checks whether a round is due
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
