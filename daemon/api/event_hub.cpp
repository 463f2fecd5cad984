#include "daemon/api/event_hub.h"

#include <google/protobuf/util/time_util.h>

namespace ebb::api {

Subscription::Subscription(ContainerFilter filter, std::set<int> kinds, std::function<void()> abort_write,
                           std::size_t capacity)
    : filter_(std::move(filter)), kinds_(std::move(kinds)), abort_write_(std::move(abort_write)), capacity_(capacity) {}

bool Subscription::wants(const v1::Event& event) const {
  return (kinds_.empty() || kinds_.count(event.kind())) && filter_.matches(event.path(), event.name());
}

bool Subscription::offer(const v1::Event& event) {
  if (!wants(event)) return true;
  std::lock_guard lock(mutex_);
  if (closed_ || overflow_) return false;
  if (queue_.size() >= capacity_) {
    overflow_ = true;
    queue_.clear();
    if (in_write_) abort_write_();
    ready_.notify_one();
    return false;
  }
  queue_.push_back(event);
  ready_.notify_one();
  return true;
}

void Subscription::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  if (in_write_) abort_write_();
  ready_.notify_one();
}

Subscription::Next Subscription::next(v1::Event& out, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, wait, [&] { return overflow_ || closed_ || !queue_.empty(); });
  if (overflow_) return Next::overflow;
  if (closed_) return Next::closed;
  if (queue_.empty()) return Next::timeout;
  out = std::move(queue_.front());
  queue_.pop_front();
  return Next::event;
}

bool Subscription::begin_write() {
  std::lock_guard lock(mutex_);
  in_write_ = !overflow_ && !closed_;
  return in_write_;
}

void Subscription::end_write() {
  std::lock_guard lock(mutex_);
  in_write_ = false;
}

void EventHub::subscribe(std::shared_ptr<Subscription> subscription) {
  std::lock_guard lock(mutex_);
  subscriptions_.push_back(std::move(subscription));
}

void EventHub::unsubscribe(const std::shared_ptr<Subscription>& subscription) {
  std::lock_guard lock(mutex_);
  std::erase(subscriptions_, subscription);
}

void EventHub::close_all() {
  std::lock_guard lock(mutex_);
  for (auto& s : subscriptions_) s->close();
  subscriptions_.clear();
}

std::size_t EventHub::subscribers() const {
  std::lock_guard lock(mutex_);
  return subscriptions_.size();
}

bool EventHub::idle() const { return subscribers() == 0; }

void EventHub::publish(const v1::Event& event) {
  std::lock_guard lock(mutex_);
  std::erase_if(subscriptions_, [&](const std::shared_ptr<Subscription>& s) {
    if (s->offer(event)) return false;
    ++dropped_;
    return true;
  });
}

namespace {

v1::Event event_of(v1::EventKind kind, const std::string& path, const std::string& name) {
  v1::Event e;
  *e.mutable_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  e.set_kind(kind);
  e.set_path(path);
  e.set_name(name);
  return e;
}

}  // namespace

void EventHub::on_adopted(const control::Container& c) {
  oom_kills_seen_[c.path] = c.oom_kills;
  if (idle()) return;
  publish(event_of(v1::EVENT_KIND_ADOPTED, c.path, c.name));
}

void EventHub::on_dropped(const std::string& path, const std::string& why) {
  oom_kills_seen_.erase(path);
  if (idle()) return;
  auto e = event_of(v1::EVENT_KIND_DROPPED, path, discovery::human_name(path));
  e.set_reason(why);
  publish(e);
}

void EventHub::on_decision(const control::Container& c, const control::DecisionRecord& record) {
  if (idle()) return;
  // An event-driven decision is the reaction to starvation; its reason starts with what starved.
  auto e = event_of(record.event_driven ? v1::EVENT_KIND_STARVATION : v1::EVENT_KIND_DECISION, c.path, c.name);
  fill_decision(record, *e.mutable_decision());
  *e.mutable_at() = e.decision().at();
  if (record.event_driven) e.set_reason(record.decision.reason.substr(0, record.decision.reason.find(':')));
  publish(e);
}

void EventHub::after_tick(const control::Engine& engine) {
  for (const auto& [path, c] : engine.containers()) {
    auto& seen = oom_kills_seen_[path];
    if (c.oom_kills > seen && !idle()) {
      auto e = event_of(v1::EVENT_KIND_OOM_KILL, path, c.name);
      e.set_oom_kills(c.oom_kills - seen);
      publish(e);
    }
    seen = c.oom_kills;
  }
}

}  // namespace ebb::api
