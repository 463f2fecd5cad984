#include "daemon/api/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

namespace ebb::api {

namespace {

// A socket file left by an ebbd that died is removed; one that still answers belongs to a live
// server, and taking it over would cut that server off.
Status claim_socket(const std::filesystem::path& socket) {
  std::error_code ec;
  std::filesystem::create_directories(socket.parent_path(), ec);
  if (ec) return system_error("cannot create the socket's directory", socket.parent_path().string(), ec.value());
  struct stat st {};
  if (::lstat(socket.c_str(), &st) != 0) return ok_status();
  if (!S_ISSOCK(st.st_mode)) return Error{"exists and is not a socket", socket.string()};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.native().size() >= sizeof addr.sun_path) return Error{"socket path too long", socket.string()};
  std::strcpy(addr.sun_path, socket.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool live = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  if (live) return Error{"another server is listening on this socket (is ebbd already running?)", socket.string()};
  if (::unlink(socket.c_str()) != 0) return system_error("cannot remove the stale socket", socket.string(), errno);
  return ok_status();
}

}  // namespace

Status check_loopback(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  std::string host = colon == std::string::npos ? "" : host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  in_addr v4{};
  in6_addr v6{};
  const bool loopback = host == "localhost" ||
                        (::inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) ||
                        (::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6));
  if (loopback) return ok_status();
  return Error{"tcp_listen: '" + host_port +
               "' is not a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT); the API has no "
               "authentication over TCP, so it is never served off the node: use the unix socket, or a tunnel that "
               "authenticates (docs/security.md)"};
}

Result<std::unique_ptr<GrpcServer>> GrpcServer::start(grpc::Service& service, const Listen& listen) {
  if (listen.tcp) {
    if (auto s = check_loopback(*listen.tcp); !s) return s.error();
  }
  if (auto s = claim_socket(listen.socket); !s) return s.error();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  std::unique_ptr<GrpcServer> out(new GrpcServer);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + listen.socket.string(), grpc::InsecureServerCredentials());
  if (listen.tcp) builder.AddListeningPort(*listen.tcp, grpc::InsecureServerCredentials(), &out->tcp_port_);
  builder.RegisterService(&service);
  out->server_ = builder.BuildAndStart();
  if (!out->server_) {
    return Error{"cannot serve the API on unix:" + listen.socket.string() + (listen.tcp ? " and " + *listen.tcp : "")};
  }
  out->socket_ = listen.socket;
  // Group access is how operators are let in (the socket's group, e.g. via a systemd unit).
  if (::chmod(listen.socket.c_str(), 0660) != 0) {
    auto e = system_error("cannot set the socket's mode to 0660", listen.socket.string(), errno);
    out->stop();
    return e;
  }
  out->server_->GetHealthCheckService()->SetServingStatus("ebb.v1.NodeService", true);
  return out;
}

void GrpcServer::stop(std::chrono::milliseconds grace) {
  if (!server_) return;
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
  std::error_code ec;
  std::filesystem::remove(socket_, ec);
}

GrpcServer::~GrpcServer() { stop(); }

}  // namespace ebb::api
