#pragma once
// gRPC credentials for ebb-manager and its nodes: mutual TLS from PEM files (every caller,
// node or orchestrator, must present a certificate signed by the CA), or plaintext, which is
// allowed only on a loopback address.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "daemon/common/error.h"

namespace ebb::manager {

struct TlsFiles {
  std::filesystem::path cert;  // this side's certificate (PEM)
  std::filesystem::path key;   // its private key
  std::filesystem::path ca;    // the CA that signs the other side's certificate
  bool empty() const { return cert.empty() && key.empty() && ca.empty(); }
};

// "127.0.0.1:7070", "localhost:1", "[::1]:7070", "unix:..." are loopback; "0.0.0.0:7070" is not.
bool is_loopback_address(std::string_view address);

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& files);
Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& files);

// How one side talks: mutual TLS, or plaintext when asked for explicitly.
struct Transport {
  TlsFiles tls;
  bool plaintext = false;  // development only; refused unless the address is loopback
};

// Mutual TLS unless `transport.plaintext`; plaintext is refused on a non-loopback address and
// together with TLS files, so that neither a typo nor a missing flag turns encryption off.
Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials_for(std::string_view listen, const Transport& transport);
Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials_for(std::string_view target,
                                                                          const Transport& transport);

// The names an authenticated TLS peer's certificate carries: its subject CN and every subject
// alternative name. Empty for a peer that is not authenticated (plaintext).
std::vector<std::string> peer_names(const grpc::AuthContext& auth);

// Under mutual TLS a node may use only an id that its client certificate names (CN or SAN), so
// one node's certificate cannot register, or take over the stream of, another node. Without TLS
// (the explicit loopback development mode) there is nothing to check against.
Status check_node_identity(std::string_view node_id, const grpc::AuthContext& auth);

}  // namespace ebb::manager
