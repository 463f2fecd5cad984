#pragma once
// ebbctl's connection to ebbd: a NodeService stub on the unix socket, and the words for the
// ways that can fail before any RPC is made.
#include <memory>
#include <string>

#include "daemon/common/error.h"
#include "ebb/v1/node.grpc.pb.h"

namespace ebb::cli {

// Connects to the socket once to tell "no such file", "permission denied" and "connection
// refused" apart, which gRPC reports only as UNAVAILABLE; the message names the socket.
Result<std::unique_ptr<v1::NodeService::Stub>> connect(const std::string& socket);

// "cannot reach ebbd at PATH: ..." for an UNAVAILABLE call, else the daemon's own message.
std::string describe(const grpc::Status& status, const std::string& socket);

}  // namespace ebb::cli
