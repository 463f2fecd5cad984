#pragma once
// WatchEvents fan-out. The hub listens to the Engine on the loop thread and copies each event
// into every subscriber's bounded queue; each stream has its own thread that drains its queue.
// The loop never waits on a reader: a subscriber whose queue is full is dropped (its stream ends)
// and the others go on.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "daemon/api/convert.h"
#include "daemon/control/engine.h"
#include "ebb/v1/node.pb.h"

namespace ebb::api {

class Subscription {
 public:
  static constexpr std::size_t kDefaultCapacity = 1024;
  // `abort_write` unblocks a write stuck on a reader that does not read (gRPC's TryCancel).
  Subscription(ContainerFilter filter, std::set<int> kinds, std::function<void()> abort_write,
               std::size_t capacity = kDefaultCapacity);

  bool wants(const v1::Event& event) const;
  // Loop thread. False when the reader fell behind: it is told to stop and must be forgotten.
  bool offer(const v1::Event& event);
  void close();  // ends the stream normally (shutdown)

  enum class Next { event, timeout, closed, overflow };
  // Stream thread: waits up to `wait` for the next event.
  Next next(v1::Event& out, std::chrono::milliseconds wait);
  // Around each blocking write of the stream thread, so that an overflow can abort it.
  // begin_write() is false when the stream is already over.
  bool begin_write();
  void end_write();

 private:
  ContainerFilter filter_;
  std::set<int> kinds_;  // v1::EventKind values; empty: all
  std::function<void()> abort_write_;
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<v1::Event> queue_;
  bool in_write_ = false, closed_ = false, overflow_ = false;
};

class EventHub final : public control::EngineListener {
 public:
  explicit EventHub(std::size_t queue = Subscription::kDefaultCapacity) : queue_(queue) {}
  std::size_t queue() const { return queue_; }
  // Any thread.
  void subscribe(std::shared_ptr<Subscription> subscription);
  void unsubscribe(const std::shared_ptr<Subscription>& subscription);
  void close_all();
  std::size_t subscribers() const;
  std::uint64_t dropped() const { return dropped_; }

  // Loop thread: Engine callbacks, and after each tick to turn new OOM kills into events.
  void on_adopted(const control::Container& c) override;
  void on_dropped(const std::string& path, const std::string& why) override;
  void on_decision(const control::Container& c, const control::DecisionRecord& record) override;
  void after_tick(const control::Engine& engine);

 private:
  void publish(const v1::Event& event);
  bool idle() const;
  const std::size_t queue_;  // events a subscriber may fall behind before it is dropped
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Subscription>> subscriptions_;
  std::atomic<std::uint64_t> dropped_{0};
  std::map<std::string, std::uint64_t> oom_kills_seen_;  // loop thread only
};

}  // namespace ebb::api
