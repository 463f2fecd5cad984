#include "daemon/api/api.h"

#include <spdlog/spdlog.h>

#include "daemon/api/event_hub.h"
#include "daemon/api/loop_call.h"
#include "daemon/api/metrics.h"
#include "daemon/api/node_service.h"
#include "daemon/api/policy_store.h"
#include "daemon/api/server.h"

namespace ebb::api {

struct Api::Impl {
  Impl(boost::asio::io_context& io, control::Engine& engine, PolicyStore policies, NodeInfo info, std::size_t queue)
      : engine(engine), policies(std::move(policies)), info(info), hub(queue), service(io, engine, this->policies, hub, info) {}

  control::Engine& engine;
  PolicyStore policies;
  NodeInfo info;
  EventHub hub;
  MetricsCollector metrics;
  NodeService service;
  std::unique_ptr<GrpcServer> grpc;
  std::unique_ptr<MetricsServer> http;
};

Api::Api(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Api>> Api::start(boost::asio::io_context& io, control::Engine& engine,
                                        const config::Config& config, NodeInfo info, std::size_t event_queue) {
  auto policies = PolicyStore::open(config.state_dir);
  if (!policies) return policies.error();
  if (!policies->overrides().empty()) {
    spdlog::info("{} API policies loaded from {}", policies->overrides().size(), policies->file().string());
  }
  engine.set_api_overrides(policies->overrides());
  auto impl = std::make_unique<Impl>(io, engine, std::move(*policies), std::move(info), event_queue);
  auto* raw = impl.get();
  auto grpc = GrpcServer::start(raw->service, Listen{config.socket, config.tcp_listen});
  if (!grpc) return grpc.error();
  raw->grpc = std::move(*grpc);
  spdlog::info("API on unix:{}{}", config.socket.string(),
               config.tcp_listen ? " and " + *config.tcp_listen + " (port " + std::to_string(raw->grpc->tcp_port()) + ")"
                                 : "");
  if (config.metrics_listen) {
    auto address = parse_metrics_address(*config.metrics_listen);
    if (!address) return address.error();
    auto http = MetricsServer::start(*address, [&io, raw] {
      return call_on_loop(io, [raw] {
        return raw->metrics.render(raw->engine, raw->info, {raw->hub.subscribers(), raw->hub.dropped()});
      });
    });
    if (!http) return http.error();
    raw->http = std::move(*http);
    spdlog::info("metrics on http://{}:{}{}", address->host, raw->http->port(), address->path);
  }
  engine.add_listener(&raw->hub);
  engine.add_listener(&raw->metrics);
  return std::unique_ptr<Api>(new Api(std::move(impl)));
}

Api::~Api() {
  impl_->hub.close_all();
  impl_->http.reset();
  impl_->grpc.reset();
  impl_->engine.remove_listener(&impl_->hub);
  impl_->engine.remove_listener(&impl_->metrics);
}

void Api::after_tick() {
  impl_->hub.after_tick(impl_->engine);
  impl_->metrics.after_tick(impl_->engine);
}

int Api::tcp_port() const { return impl_->grpc->tcp_port(); }
int Api::metrics_port() const { return impl_->http ? impl_->http->port() : 0; }

}  // namespace ebb::api
