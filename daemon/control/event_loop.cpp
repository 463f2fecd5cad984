#include "daemon/control/event_loop.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <csignal>
#include <list>
#include <optional>

#include "daemon/probes/psi_trigger.h"

namespace ebb::control {

namespace asio = boost::asio;

namespace {

// Inotify buffers read per wakeup of the loop: up to ~2,000 creations or removals before the
// loop's other work gets its turn.
constexpr std::size_t kTreeReadsPerWakeup = 4;

// PSI triggers on each managed cgroup's cpu and memory pressure: the event source when the eBPF
// probes are not loaded. A stall of 50 ms within 500 ms (10%) calls for a decision at once.
class PressureTriggers final : public EngineListener {
 public:
  PressureTriggers(asio::io_context& io, Engine& engine) : io_(io), engine_(engine) {
    // Arming a trigger writes to the pressure file: only meaningful (and harmless) on cgroup2.
    struct statfs fs {};
    on_cgroup2_ = ::statfs(engine.config().cgroup_root.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
    if (!on_cgroup2_) spdlog::info("{} is not a cgroup2 mount: no PSI triggers", engine.config().cgroup_root.string());
  }
  ~PressureTriggers() override {
    for (auto& w : watches_) w.descriptor.release();  // the PsiTrigger closes its fd
  }

  void on_adopted(const Container& c) override {
    using namespace std::chrono_literals;
    if (!on_cgroup2_) return;
    for (auto resource : {probes::PressureResource::cpu, probes::PressureResource::memory}) {
      auto trigger = probes::PsiTrigger::open(engine_.config().cgroup_root / c.path, resource, 50ms, 500ms);
      if (!trigger) {
        if (!warned_) spdlog::warn("no PSI trigger on {} ({}); reacting on ticks only", c.path, trigger.error().to_string());
        warned_ = true;
        continue;
      }
      const int fd = trigger->fd();
      auto& w = watches_.emplace_back(Watch{c.path, c.id, resource, std::move(*trigger), asio::posix::stream_descriptor(io_, fd)});
      wait(w);
    }
  }

  void on_dropped(const std::string& path, const std::string&) override {
    for (auto it = watches_.begin(); it != watches_.end();) {
      if (it->path != path) {
        ++it;
        continue;
      }
      it->descriptor.cancel();
      it->descriptor.release();
      it = watches_.erase(it);
    }
  }

 private:
  struct Watch {
    std::string path;
    std::uint64_t id;
    probes::PressureResource resource;
    probes::PsiTrigger trigger;
    asio::posix::stream_descriptor descriptor;
  };

  void wait(Watch& w) {
    // The Watch lives in a std::list, so its address is stable until on_dropped erases it,
    // which cancels the wait first (the handler then sees operation_aborted and stops).
    w.descriptor.async_wait(asio::posix::stream_descriptor::wait_error, [this, &w](const boost::system::error_code& ec) {
      if (ec) return;
      auto fired = w.trigger.wait(std::chrono::milliseconds(0));
      if (!fired) return;  // POLLERR: the cgroup is gone; the tree watcher drops it
      const char* why = w.resource == probes::PressureResource::cpu ? "cpu pressure" : "memory pressure";
      engine_.react(w.id, why, std::chrono::steady_clock::now());
      wait(w);
    });
  }

  asio::io_context& io_;
  Engine& engine_;
  std::list<Watch> watches_;
  bool on_cgroup2_ = false;
  bool warned_ = false;
};

}  // namespace

struct EventLoop::Impl {
  Impl(asio::io_context& io, Engine& engine, probes::ProbeSource* probes, LoopHooks hooks)
      : io(io), engine(engine), probes(probes), hooks(std::move(hooks)), timer(io), signals(io, SIGTERM, SIGINT, SIGHUP) {}

  ~Impl() {
    if (pressure) engine.remove_listener(&*pressure);
    // The descriptors' fds belong to the watcher and the probes; Asio must not close them.
    if (tree_events) tree_events->release();
    if (probe_events) probe_events->release();
  }

  asio::io_context& io;
  Engine& engine;
  probes::ProbeSource* probes;
  LoopHooks hooks;
  asio::steady_timer timer;
  asio::signal_set signals;
  std::unique_ptr<discovery::TreeWatcher> watcher;
  std::optional<asio::posix::stream_descriptor> tree_events;
  std::optional<asio::posix::stream_descriptor> probe_events;
  std::chrono::steady_clock::time_point next_tick;
  bool notified_ready = false;
  bool rescan_posted = false;
  bool watchdog = false;
  std::optional<Error> failure;
  std::optional<PressureTriggers> pressure;

  void start() {
    const bool react = engine.config().react_to_events;
    if (!react) spdlog::info("event reactions off (react_to_events = false): decisions on ticks only");
    if (!probes && react) {
      pressure.emplace(io, engine);
      engine.add_listener(&*pressure);
    }
    auto watcher_or = discovery::TreeWatcher::open(engine.config().cgroup_root);
    if (watcher_or) {
      watcher = std::move(*watcher_or);
      tree_events.emplace(io, watcher->fd());
      wait_tree();
    } else {
      spdlog::warn("no inotify on the cgroup tree ({}); new cgroups are found every tick",
                   watcher_or.error().to_string());
    }
    if (probes && react && probes->event_fd() >= 0) {
      probe_events.emplace(io, probes->event_fd());
      wait_probe_events();
    }
    std::uint64_t usec = 0;
    watchdog = sd_watchdog_enabled(0, &usec) > 0;
    wait_signals();
    engine.rescan();
    next_tick = std::chrono::steady_clock::now();
    on_tick();
  }

  void on_tick() {
    if (!watcher) engine.rescan();
    std::optional<std::unordered_map<std::uint64_t, probes::CgroupCounters>> counters;
    if (probes) {
      auto read = probes->read();
      if (read) counters = std::move(*read);
      else spdlog::debug("probe read failed: {}", read.error().to_string());
    }
    engine.tick(counters ? &*counters : nullptr);
    if (hooks.after_tick) hooks.after_tick();
    if (!notified_ready) {
      sd_notify(0, "READY=1\nSTATUS=managing cgroups");
      notified_ready = true;
    }
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    // Fixed rate; a late tick does not cause a burst of catch-up ticks.
    const auto now = std::chrono::steady_clock::now();
    next_tick += engine.config().tick;
    if (next_tick < now) next_tick = now + engine.config().tick;
    timer.expires_at(next_tick);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) on_tick();
    });
  }

  void wait_tree() {
    tree_events->async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec) return;
      // A bounded drain, and one rescan for all the drains before it ran: under a flood of
      // cgroup creations the loop still ticks, answers the API and serves scrapes in between.
      if (watcher->drain(kTreeReadsPerWakeup) && !rescan_posted) {
        rescan_posted = true;
        asio::post(io, [this] {
          rescan_posted = false;
          engine.rescan();
        });
      }
      wait_tree();
    });
  }

  void wait_probe_events() {
    probe_events->async_wait(asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& ec) {
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      probes->consume([&](const probes::Event& event) {
        const char* what = probes::to_string(event.kind);
        if (event.kind == probes::Event::Kind::oom_kill) {
          const Container* c = engine.find_by_id(event.cgroup_id);
          spdlog::warn("OOM kill in {}", c ? c->path : std::to_string(event.cgroup_id));
        }
        engine.react(event.cgroup_id, what, now);
      });
      wait_probe_events();
    });
  }

  void wait_signals() {
    signals.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        wait_signals();
        return;
      }
      spdlog::info("signal {}: stopping", signal);
      shutdown();
    });
  }

  void reload() {
    if (!hooks.reload) return;
    sd_notify(0, "RELOADING=1");
    auto next = hooks.reload();
    if (next) {
      engine.reconfigure(std::move(*next));
      engine.rescan();
      spdlog::info("configuration reloaded");
    } else {
      spdlog::error("configuration rejected, the previous one stays in force: {}", next.error().to_string());
    }
    sd_notify(0, "READY=1");
  }

  void shutdown() {
    sd_notify(0, "STOPPING=1");
    timer.cancel();
    signals.cancel();
    if (tree_events) tree_events->cancel();
    if (probe_events) probe_events->cancel();
    if (engine.config().restore_on_exit) {
      engine.restore_originals();
    } else {
      spdlog::info("keeping the managed limits (restore_on_exit = false)");
    }
    io.stop();
  }
};

EventLoop::EventLoop(asio::io_context& io, Engine& engine, probes::ProbeSource* probes, LoopHooks hooks)
    : impl_(std::make_unique<Impl>(io, engine, probes, std::move(hooks))) {}

EventLoop::~EventLoop() = default;

Status EventLoop::run() {
  impl_->start();
  impl_->io.run();
  if (impl_->failure) return *impl_->failure;
  return ok_status();
}

void EventLoop::stop() {
  asio::post(impl_->io, [this] { impl_->shutdown(); });
}

}  // namespace ebb::control
