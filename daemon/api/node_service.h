#pragma once
// ebb.v1.NodeService: one handler per RPC, each a thin translation. Handlers run on gRPC's
// threads and never touch the Engine there: they post a function to the loop (call_on_loop)
// that reads or changes it, and wait for the result. WatchEvents streams run on their own
// gRPC thread each, fed by the EventHub.
#include <boost/asio/io_context.hpp>

#include "daemon/api/convert.h"
#include "daemon/api/event_hub.h"
#include "daemon/api/policy_store.h"
#include "daemon/control/engine.h"
#include "ebb/v1/node.grpc.pb.h"

namespace ebb::api {

class NodeService final : public v1::NodeService::Service {
 public:
  // `engine` and `policies` belong to the loop thread; this service must outlive the
  // io_context's last run (a call that timed out may still run on the loop later).
  NodeService(boost::asio::io_context& io, control::Engine& engine, PolicyStore& policies, EventHub& hub,
              NodeInfo info);

  grpc::Status GetNode(grpc::ServerContext*, const v1::GetNodeRequest*, v1::Node* out) override;
  grpc::Status ListContainers(grpc::ServerContext*, const v1::ListContainersRequest* request,
                              v1::ListContainersResponse* out) override;
  grpc::Status GetContainer(grpc::ServerContext*, const v1::GetContainerRequest* request,
                            v1::ContainerDetail* out) override;
  grpc::Status WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                           grpc::ServerWriter<v1::Event>* writer) override;
  grpc::Status SetPolicy(grpc::ServerContext*, const v1::SetPolicyRequest* request,
                         v1::SetPolicyResponse* out) override;

 private:
  template <typename Response, typename Fn>
  grpc::Status on_loop(Response* out, Fn fn);

  boost::asio::io_context& io_;
  control::Engine& engine_;
  PolicyStore& policies_;
  EventHub& hub_;
  NodeInfo info_;
};

// A container's path as a selector that matches only it (glob characters escaped).
std::string literal_selector(const std::string& path);

}  // namespace ebb::api
