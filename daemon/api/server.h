#pragma once
// The gRPC server of ebbd: NodeService, the standard health service and server reflection, on
// a unix socket (always) and a TCP address (when configured).
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/server.h>

#include "daemon/common/error.h"

namespace ebb::api {

struct Listen {
  std::filesystem::path socket;            // created with mode 0660, its directory if missing
  std::optional<std::string> tcp;          // "host:port", a loopback host; port 0 picks a free one
};

// The TCP listener has no authentication (insecure credentials), so anyone who can reach it
// can change every container's limits: it may only listen on loopback (127.0.0.0/8, ::1,
// localhost), where reaching it takes a process on this node. Remote access goes through
// something that authenticates, e.g. `ssh -L` to the unix socket (docs/security.md).
Status check_loopback(const std::string& host_port);

class GrpcServer {
 public:
  // Fails when a socket or port cannot be bound, or when another live server owns the socket.
  static Result<std::unique_ptr<GrpcServer>> start(grpc::Service& service, const Listen& listen);
  ~GrpcServer();
  int tcp_port() const { return tcp_port_; }
  // Ends every call within `grace` (streams are cancelled), removes the socket file.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  GrpcServer() = default;
  std::unique_ptr<grpc::Server> server_;
  std::filesystem::path socket_;
  int tcp_port_ = 0;
};

}  // namespace ebb::api
