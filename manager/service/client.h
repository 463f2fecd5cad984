#pragma once
// A ManagerService stub for orchestrator-side tools (the ebb-manager subcommands, the load
// generator, tests), with the same credential rules as the server.
#include <memory>
#include <string>

#include "daemon/common/error.h"
#include "ebb/v1/manager.grpc.pb.h"
#include "manager/tls/tls.h"

namespace ebb::manager {

Result<std::unique_ptr<v1::ManagerService::Stub>> connect_manager(const std::string& target, const Transport& transport);

}  // namespace ebb::manager
