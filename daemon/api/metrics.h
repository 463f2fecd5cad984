#pragma once
// Prometheus metrics: a collector that lives on the loop thread (it listens to the Engine and
// renders the text exposition format there), and an HTTP server on its own thread that asks
// the loop for a fresh rendering on each scrape.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "daemon/api/convert.h"
#include "daemon/common/error.h"
#include "daemon/control/engine.h"

namespace httplib {
class Server;
}

namespace ebb::api {

class MetricsCollector final : public control::EngineListener {
 public:
  static constexpr double kTickBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};

  void on_decision(const control::Container& c, const control::DecisionRecord& record) override;
  void on_dropped(const std::string& path, const std::string& why) override;
  // After each tick: its duration, from the tick's first cgroup read (the earliest snapshot
  // taken since the previous tick) to now. Ticks with no container are not measured.
  void after_tick(const control::Engine& engine);

  struct Extra {
    std::size_t event_subscribers = 0;
    std::uint64_t event_streams_dropped = 0;
  };
  std::string render(const control::Engine& engine, const NodeInfo& info, const Extra& extra) const;

 private:
  // (path, source, trigger) -> decisions; trigger is "tick" or what starved ("runq_latency").
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> decisions_;
  std::vector<std::uint64_t> tick_buckets_ = std::vector<std::uint64_t>(std::size(kTickBuckets), 0);
  std::uint64_t tick_count_ = 0;
  double tick_sum_s_ = 0;
  std::chrono::steady_clock::time_point previous_tick_end_{};
};

// "host:port" or "host:port/path" (default path /metrics); IPv6 hosts in brackets.
struct MetricsAddress {
  std::string host;
  int port = 0;
  std::string path = "/metrics";
};
Result<MetricsAddress> parse_metrics_address(const std::string& text);

class MetricsServer {
 public:
  // `render` runs on the server's thread and returns nullopt when the loop did not answer.
  static Result<std::unique_ptr<MetricsServer>> start(const MetricsAddress& address,
                                                      std::function<std::optional<std::string>()> render);
  ~MetricsServer();
  int port() const { return port_; }

 private:
  MetricsServer();
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ebb::api
