#include "daemon/api/metrics.h"

#include <httplib.h>
#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (sanitizer/allocator_interface.h, which GCC does not install).
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
extern "C" std::size_t __sanitizer_get_free_bytes();
#endif

#include <cmath>
#include <sstream>

#include "daemon/control/observe.h"

namespace ebb::api {

void MetricsCollector::on_decision(const control::Container& c, const control::DecisionRecord& record) {
  const auto& reason = record.decision.reason;
  const std::string trigger = record.event_driven ? reason.substr(0, reason.find(':')) : "tick";
  ++decisions_[{c.path, record.decision.source, trigger}];
}

void MetricsCollector::on_dropped(const std::string& path, const std::string&) {
  std::erase_if(decisions_, [&](const auto& entry) { return std::get<0>(entry.first) == path; });
}

void MetricsCollector::after_tick(const control::Engine& engine) {
  const auto now = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> first;
  for (const auto& [path, c] : engine.containers()) {
    if (c.last_snapshot && c.last_snapshot->taken_at > previous_tick_end_ && (!first || c.last_snapshot->taken_at < *first)) {
      first = c.last_snapshot->taken_at;
    }
  }
  previous_tick_end_ = now;
  if (!first) return;
  const double seconds = std::chrono::duration<double>(now - *first).count();
  for (std::size_t i = 0; i < std::size(kTickBuckets); ++i) {
    if (seconds <= kTickBuckets[i]) ++tick_buckets_[i];
  }
  ++tick_count_;
  tick_sum_s_ += seconds;
}

namespace {

// The text exposition format: one HELP and TYPE per family, then its samples.
class Exposition {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  using Labels = std::vector<std::pair<const char*, std::string>>;
  void sample(const std::string& name, const Labels& labels, double value) {
    out_ << name;
    if (!labels.empty()) {
      out_ << '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        out_ << (i ? "," : "") << labels[i].first << "=\"" << escape(labels[i].second) << '"';
      }
      out_ << '}';
    }
    out_ << ' ' << number(value) << '\n';
  }
  std::string text() const { return out_.str(); }

 private:
  static std::string escape(const std::string& value) {
    std::string out;
    for (char ch : value) {
      if (ch == '\\') out += "\\\\";
      else if (ch == '"') out += "\\\"";
      else if (ch == '\n') out += "\\n";
      else out += ch;
    }
    return out;
  }
  static std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    std::ostringstream s;
    s.precision(12);
    s << v;
    return s.str();
  }
  std::ostringstream out_;
};

// One gauge or counter family over every container.
template <typename Value>
void per_container(Exposition& e, const control::Engine& engine, const char* name, const char* type, const char* help,
                   Value value) {
  e.family(name, type, help);
  for (const auto& [path, c] : engine.containers()) {
    e.sample(name, {{"container", path}, {"name", c.name}}, value(c));
  }
}

double limit_or_inf(const control::Container& c, auto member) {
  if (!c.last_snapshot) return INFINITY;
  const auto limits = control::current_limits(*c.last_snapshot);
  const auto& value = limits.*member;
  return value ? static_cast<double>(*value) : INFINITY;
}

}  // namespace

std::string MetricsCollector::render(const control::Engine& engine, const NodeInfo& info, const Extra& extra) const {
  Exposition e;
  using C = control::Container;
  per_container(e, engine, "ebb_container_cpu_limit_cores", "gauge", "cpu.max as cores (+Inf: max)",
                [](const C& c) { return limit_or_inf(c, &policy::Limits::cpu_cores); });
  per_container(e, engine, "ebb_container_cpu_usage_cores", "gauge", "CPU used over the last tick, in cores",
                [](const C& c) { return c.last_observation.cpu_usage_cores; });
  per_container(e, engine, "ebb_container_cpu_usage_seconds_total", "counter", "cpu.stat usage_usec, in seconds",
                [](const C& c) {
                  return c.last_snapshot && c.last_snapshot->cpu_stat ? c.last_snapshot->cpu_stat->usage_usec / 1e6 : 0.0;
                });
  per_container(e, engine, "ebb_container_cpu_throttled_ratio", "gauge",
                "share of CFS periods throttled over the last tick",
                [](const C& c) { return c.last_observation.cpu_throttled_periods; });
  per_container(e, engine, "ebb_container_cpu_throttled_periods_total", "counter", "cpu.stat nr_throttled",
                [](const C& c) {
                  return c.last_snapshot && c.last_snapshot->cpu_stat ? double(c.last_snapshot->cpu_stat->nr_throttled)
                                                                      : 0.0;
                });
  per_container(e, engine, "ebb_container_memory_current_bytes", "gauge", "memory.current",
                [](const C& c) { return double(c.last_observation.memory_current_bytes); });
  per_container(e, engine, "ebb_container_memory_high_bytes", "gauge", "memory.high (+Inf: max)",
                [](const C& c) { return limit_or_inf(c, &policy::Limits::memory_high_bytes); });
  per_container(e, engine, "ebb_container_memory_max_bytes", "gauge", "memory.max (+Inf: max)",
                [](const C& c) { return limit_or_inf(c, &policy::Limits::memory_max_bytes); });
  per_container(e, engine, "ebb_container_limit_writes_total", "counter", "limit files written by ebbd",
                [](const C& c) { return double(c.limit_writes); });
  per_container(e, engine, "ebb_container_oom_kills_total", "counter", "OOM kills seen since adoption",
                [](const C& c) { return double(c.oom_kills); });
  per_container(e, engine, "ebb_container_event_reactions_total", "counter",
                "decisions made at once on a starvation event",
                [](const C& c) { return double(c.event_reactions); });

  e.family("ebb_container_decisions_total", "counter",
           "limit changes decided, by controller source and trigger (tick, or the starvation event)");
  for (const auto& [key, count] : decisions_) {
    const auto& [path, source, trigger] = key;
    const auto it = engine.containers().find(path);
    if (it == engine.containers().end()) continue;
    e.sample("ebb_container_decisions_total",
             {{"container", path}, {"name", it->second.name}, {"source", source}, {"trigger", trigger}}, double(count));
  }

  // Run-queue latency since adoption, from the probes' log2 histogram (bucket i: < 2^(i+1) ns).
  e.family("ebb_container_runq_latency_seconds", "histogram", "time runnable tasks waited for a CPU (eBPF probes)");
  for (const auto& [path, c] : engine.containers()) {
    if (!c.last_probe) continue;
    const auto& h = c.last_probe->runq_latency;
    std::uint64_t cumulative = 0;
    for (int i = 0; i < probes::kLatencyBuckets; ++i) {
      cumulative += h.buckets[static_cast<std::size_t>(i)];
      e.sample("ebb_container_runq_latency_seconds_bucket",
               {{"container", path}, {"name", c.name}, {"le", std::to_string(std::ldexp(1.0, i + 1) / 1e9)}},
               double(cumulative));
    }
    e.sample("ebb_container_runq_latency_seconds_bucket", {{"container", path}, {"name", c.name}, {"le", "+Inf"}},
             double(h.count));
    e.sample("ebb_container_runq_latency_seconds_sum", {{"container", path}, {"name", c.name}}, h.sum_ns / 1e9);
    e.sample("ebb_container_runq_latency_seconds_count", {{"container", path}, {"name", c.name}}, double(h.count));
  }

  e.family("ebbd_build_info", "gauge", "always 1, labelled with the version");
  e.sample("ebbd_build_info", {{"version", info.version}}, 1);
  e.family("ebbd_uptime_seconds", "gauge", "seconds since ebbd started");
  e.sample("ebbd_uptime_seconds", {}, std::chrono::duration<double>(std::chrono::steady_clock::now() - info.started).count());
  e.family("ebbd_ticks_total", "counter", "control ticks run");
  e.sample("ebbd_ticks_total", {}, double(engine.ticks()));
  e.family("ebbd_tick_duration_seconds", "histogram", "from a tick's first cgroup read to the end of its writes");
  for (std::size_t i = 0; i < std::size(kTickBuckets); ++i) {
    std::ostringstream le;
    le << kTickBuckets[i];
    e.sample("ebbd_tick_duration_seconds_bucket", {{"le", le.str()}}, double(tick_buckets_[i]));
  }
  e.sample("ebbd_tick_duration_seconds_bucket", {{"le", "+Inf"}}, double(tick_count_));
  e.sample("ebbd_tick_duration_seconds_sum", {}, tick_sum_s_);
  e.sample("ebbd_tick_duration_seconds_count", {}, double(tick_count_));
  e.family("ebbd_containers", "gauge", "containers managed");
  e.sample("ebbd_containers", {}, double(engine.containers().size()));
  e.family("ebbd_unmanageable_cgroups", "gauge", "selected cgroups that cannot be managed");
  e.sample("ebbd_unmanageable_cgroups", {}, double(engine.unmanageable().size()));
  e.family("ebbd_cpu_budget_cores", "gauge", "CPU the managed containers share");
  e.sample("ebbd_cpu_budget_cores", {}, engine.cpu_budget());
  e.family("ebbd_probe_attached", "gauge", "1 when the eBPF probe is attached (none listed: probes not loaded)");
  for (const auto& p : info.probes) e.sample("ebbd_probe_attached", {{"probe", p.name}}, p.attached ? 1 : 0);
  e.family("ebbd_probes_loaded", "gauge", "1 when the eBPF probes are loaded");
  e.sample("ebbd_probes_loaded", {}, info.probes.empty() ? 0 : 1);
  e.family("ebbd_event_subscribers", "gauge", "open WatchEvents streams");
  e.sample("ebbd_event_subscribers", {}, double(extra.event_subscribers));
  e.family("ebbd_event_streams_dropped_total", "counter", "WatchEvents streams dropped for falling behind");
  e.sample("ebbd_event_streams_dropped_total", {}, double(extra.event_streams_dropped));
  // What RssAnon cannot tell apart: memory the program holds, and memory glibc's malloc keeps
  // free in its arenas after the program gave it back (docs/operations.md, "Memory under churn").
  // Under ASan malloc is ASan's, and mallinfo2() would describe an unused glibc heap.
#if defined(__SANITIZE_ADDRESS__)
  const double in_use = double(__sanitizer_get_current_allocated_bytes()), kept = double(__sanitizer_get_free_bytes());
#else
  const auto heap = ::mallinfo2();
  const double in_use = double(heap.uordblks + heap.hblkhd), kept = double(heap.fordblks);
#endif
  e.family("ebbd_heap_in_use_bytes", "gauge", "heap allocated and not yet freed, all arenas and mmapped blocks (mallinfo2)");
  e.sample("ebbd_heap_in_use_bytes", {}, in_use);
  e.family("ebbd_heap_free_bytes", "gauge", "heap freed but kept by the allocator, not returned to the kernel (mallinfo2)");
  e.sample("ebbd_heap_free_bytes", {}, kept);
  return e.text();
}

Result<MetricsAddress> parse_metrics_address(const std::string& text) {
  MetricsAddress a;
  std::string hostport = text;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    hostport = text.substr(0, slash);
    a.path = text.substr(slash);
  }
  const auto colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0) return Error{"metrics address '" + text + "': expected host:port[/path]"};
  a.host = hostport.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  const std::string port = hostport.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || value < 0 || value > 65535) {
    return Error{"metrics address '" + text + "': port '" + port + "' is not a number from 0 to 65535"};
  }
  a.port = static_cast<int>(value);
  return a;
}

MetricsServer::MetricsServer() : http_(std::make_unique<httplib::Server>()) {}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const MetricsAddress& address,
                                                            std::function<std::optional<std::string>()> render) {
  std::unique_ptr<MetricsServer> out(new MetricsServer);
  out->http_->Get(address.path, [render = std::move(render)](const httplib::Request&, httplib::Response& response) {
    auto text = render();
    if (!text) {
      response.status = 503;
      response.set_content("ebbd's control loop did not answer in time\n", "text/plain");
      return;
    }
    response.set_content(*text, "text/plain; version=0.0.4; charset=utf-8");
  });
  out->port_ = address.port == 0 ? out->http_->bind_to_any_port(address.host)
                                 : (out->http_->bind_to_port(address.host, address.port) ? address.port : -1);
  if (out->port_ <= 0) {
    return Error{"cannot listen for metrics on " + address.host + ":" + std::to_string(address.port)};
  }
  out->thread_ = std::thread([server = out->http_.get()] { server->listen_after_bind(); });
  return out;
}

MetricsServer::~MetricsServer() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ebb::api
