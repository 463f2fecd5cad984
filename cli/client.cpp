#include "cli/client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace ebb::cli {

namespace {

std::string unreachable(const std::string& socket, const std::string& why) {
  return "cannot reach ebbd at " + socket + ": " + why;
}

}  // namespace

Result<std::unique_ptr<v1::NodeService::Stub>> connect(const std::string& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof addr.sun_path) return Error{unreachable(socket, "socket path too long")};
  std::strcpy(addr.sun_path, socket.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return system_error(unreachable(socket, "cannot create a socket"), socket, errno);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int err = errno;
  ::close(fd);
  if (rc != 0) {
    switch (err) {
      case ENOENT: return Error{unreachable(socket, "no such file (is ebbd running?)")};
      case EACCES:
      case EPERM:
        return Error{unreachable(socket, "permission denied (run as root or as a member of the socket's group)")};
      case ECONNREFUSED: return Error{unreachable(socket, "connection refused (ebbd is not running; a stale socket)")};
      default: return Error{unreachable(socket, std::strerror(err))};
    }
  }
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  return v1::NodeService::NewStub(channel);
}

std::string describe(const grpc::Status& status, const std::string& socket) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) return unreachable(socket, status.error_message());
  return status.error_message();
}

}  // namespace ebb::cli
