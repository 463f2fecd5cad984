#include "manager/service/client.h"

#include <grpcpp/create_channel.h>

namespace ebb::manager {

Result<std::unique_ptr<v1::ManagerService::Stub>> connect_manager(const std::string& target, const Transport& transport) {
  auto credentials = channel_credentials_for(target, transport);
  if (!credentials) return credentials.error();
  return v1::ManagerService::NewStub(grpc::CreateChannel(target, *credentials));
}

}  // namespace ebb::manager
