#include "manager/tls/tls.h"

#include <fstream>
#include <sstream>
#include <string>

#include <grpc/grpc_security_constants.h>

namespace ebb::manager {
namespace {

Result<std::string> read_pem(const std::filesystem::path& file, const char* what) {
  if (file.empty()) return Error{std::string("TLS: the ") + what + " file is not set"};
  std::ifstream in(file);
  if (!in) return system_error(std::string("TLS: cannot read the ") + what, file.string(), errno);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct Pems {
  std::string cert, key, ca;
};

Result<Pems> read_all(const TlsFiles& files) {
  auto cert = read_pem(files.cert, "certificate");
  if (!cert) return cert.error();
  auto key = read_pem(files.key, "key");
  if (!key) return key.error();
  auto ca = read_pem(files.ca, "CA");
  if (!ca) return ca.error();
  return Pems{*cert, *key, *ca};
}

std::string_view host_of(std::string_view address) {
  if (address.starts_with("ipv4:") || address.starts_with("ipv6:") || address.starts_with("dns:"))
    address.remove_prefix(address.find(':') + 1);
  if (address.starts_with("[")) return address.substr(1, address.find(']') - 1);
  return address.substr(0, address.rfind(':'));
}

Status check_plaintext(std::string_view address, const Transport& transport) {
  if (!transport.tls.empty()) return Error{"plaintext and TLS files are both set: choose one"};
  if (!is_loopback_address(address))
    return Error{"refusing plaintext gRPC on non-loopback address " + std::string(address) +
                 " (plaintext is for loopback development only; set TLS certificate, key and CA)"};
  return ok_status();
}

}  // namespace

bool is_loopback_address(std::string_view address) {
  if (address.starts_with("unix:")) return true;
  const auto host = host_of(address);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials(const TlsFiles& files) {
  auto pems = read_all(files);
  if (!pems) return pems.error();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = pems->ca;
  options.pem_key_cert_pairs.push_back({pems->key, pems->cert});
  return grpc::SslServerCredentials(options);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials(const TlsFiles& files) {
  auto pems = read_all(files);
  if (!pems) return pems.error();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = pems->ca;
  options.pem_private_key = pems->key;
  options.pem_cert_chain = pems->cert;
  return grpc::SslCredentials(options);
}

Result<std::shared_ptr<grpc::ServerCredentials>> server_credentials_for(std::string_view listen, const Transport& transport) {
  if (!transport.plaintext) return server_credentials(transport.tls);
  if (auto s = check_plaintext(listen, transport); !s) return s.error();
  return grpc::InsecureServerCredentials();
}

Result<std::shared_ptr<grpc::ChannelCredentials>> channel_credentials_for(std::string_view target,
                                                                          const Transport& transport) {
  if (!transport.plaintext) return channel_credentials(transport.tls);
  if (auto s = check_plaintext(target, transport); !s) return s.error();
  return grpc::InsecureChannelCredentials();
}

std::vector<std::string> peer_names(const grpc::AuthContext& auth) {
  std::vector<std::string> names;
  if (!auth.IsPeerAuthenticated()) return names;
  for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME})
    for (const auto& value : auth.FindPropertyValues(property)) names.emplace_back(value.data(), value.size());
  return names;
}

Status check_node_identity(std::string_view node_id, const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) return ok_status();
  const auto names = peer_names(auth);
  for (const auto& name : names)
    if (name == node_id) return ok_status();
  std::string listed;
  for (const auto& name : names) listed += (listed.empty() ? "" : ", ") + name;
  return Error{"node id '" + std::string(node_id) + "' is not a name in the client certificate (CN and SANs: " +
               (listed.empty() ? "none" : listed) + ")"};
}

}  // namespace ebb::manager
