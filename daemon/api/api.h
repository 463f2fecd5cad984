#pragma once
// ebbd's API as one piece for main: API policies (loaded and applied at start), the gRPC
// server, the event fan-out and the optional metrics endpoint.
#include <boost/asio/io_context.hpp>
#include <memory>

#include "daemon/api/convert.h"
#include "daemon/api/event_hub.h"
#include "daemon/common/error.h"
#include "daemon/config/config.h"
#include "daemon/control/engine.h"

namespace ebb::api {

class Api {
 public:
  // Call before the loop runs (it registers Engine listeners from this thread). Serves on
  // config.socket, and config.tcp_listen / config.metrics_listen when set.
  static Result<std::unique_ptr<Api>> start(boost::asio::io_context& io, control::Engine& engine,
                                            const config::Config& config, NodeInfo info,
                                            std::size_t event_queue = Subscription::kDefaultCapacity);
  ~Api();  // stops the servers; call after the loop has stopped
  void after_tick();  // loop thread: LoopHooks.after_tick
  int tcp_port() const;
  int metrics_port() const;

 private:
  struct Impl;
  explicit Api(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ebb::api
