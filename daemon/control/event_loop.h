#pragma once
// ebbd's event loop (Boost.Asio, one thread): the tick timer, inotify on the cgroup tree, the
// probes' ring buffer, signals and the systemd notifications all wait in one io_context.
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include "daemon/common/error.h"
#include "daemon/config/config.h"
#include "daemon/control/engine.h"
#include "daemon/probes/probes.h"

namespace ebb::control {

struct LoopHooks {
  // SIGHUP: returns the new config, or the error that keeps the old one in force.
  std::function<Result<config::Config>()> reload;
  // Called after every tick (metrics, API snapshots).
  std::function<void()> after_tick;
};

class EventLoop {
 public:
  EventLoop(boost::asio::io_context& io, Engine& engine, probes::ProbeSource* probes, LoopHooks hooks);
  ~EventLoop();
  // Runs until SIGTERM/SIGINT (or stop()); restores originals on the way out if configured.
  Status run();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ebb::control
