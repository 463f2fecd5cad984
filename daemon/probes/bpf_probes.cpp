// open_bpf_probes(): the libbpf side. Loads what this kernel accepts, attaches each probe on its
// own, and reads the maps through the pure functions of decode.h.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_set>

#include "daemon/probes/decode.h"
#include "daemon/probes/probes.h"
#include "ebb_probes_bpf.skel.h"

namespace ebb::probes {
namespace {

// A probe is the unit that is on or off: its programs attach together or not at all (a reclaim
// "begin" without its "end" would only fill the start map).
struct ProbeDef {
  const char* name;
  std::vector<const char*> programs;
  const char* kprobe_function = nullptr;  // looked up in available_filter_functions first
};

const std::vector<ProbeDef>& probe_defs() {
  static const std::vector<ProbeDef> defs{
      {"sched_switch", {"ebb_sched_switch"}},
      {"cpu_tick", {"ebb_hrtimer_expire_entry"}},
      {"sched_wakeup", {"ebb_sched_wakeup", "ebb_sched_wakeup_new"}},
      {"memcg_reclaim", {"ebb_memcg_reclaim_begin", "ebb_memcg_reclaim_end"}},
      {"direct_reclaim", {"ebb_direct_reclaim_begin", "ebb_direct_reclaim_end"}},
      {"oom_kill", {"ebb_oom_kill_process"}, "oom_kill_process"},
      {"throttle_cfs_rq", {"ebb_throttle_cfs_rq"}, "throttle_cfs_rq"},
  };
  return defs;
}

// libbpf says why a load failed only through its print callback: keep the last warnings while
// loading so the reason reaches ProbeStatus instead of stderr.
thread_local std::deque<std::string>* libbpf_lines = nullptr;

int capture_libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || libbpf_lines == nullptr) return 0;
  char line[512];
  std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.rfind("libbpf: ", 0) == 0) text.erase(0, 8);
  if (text.empty()) return 0;
  libbpf_lines->push_back(std::move(text));
  if (libbpf_lines->size() > 3) libbpf_lines->pop_front();
  return 0;
}

class LibbpfLogCapture {
 public:
  LibbpfLogCapture() : previous_(libbpf_set_print(capture_libbpf_print)) { libbpf_lines = &lines_; }
  ~LibbpfLogCapture() {
    libbpf_lines = nullptr;
    libbpf_set_print(previous_);
  }
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // The captured lines since the last call, joined; empty if libbpf said nothing.
  std::string take() {
    std::string out;
    for (const auto& line : lines_) out += (out.empty() ? "" : "; ") + line;
    lines_.clear();
    return out;
  }

 private:
  libbpf_print_fn_t previous_;
  std::deque<std::string> lines_;
};

using Skeleton = std::unique_ptr<ebb_probes_bpf, decltype(&ebb_probes_bpf__destroy)>;
using Link = std::unique_ptr<bpf_link, decltype(&bpf_link__destroy)>;
using RingBuffer = std::unique_ptr<ring_buffer, decltype(&ring_buffer__free)>;

Error libbpf_error(std::string what, int errno_value, LibbpfLogCapture& log) {
  const std::string said = log.take();
  if (!said.empty()) what += " (libbpf: " + said + ")";
  return system_error(std::move(what), {}, errno_value);
}

// Opens the object, sets the rodata settings and loads only the programs of `probes`.
Result<Skeleton> open_and_load(const Options& options, const std::vector<const ProbeDef*>& probes,
                               LibbpfLogCapture& log) {
  Skeleton skel(ebb_probes_bpf__open(), ebb_probes_bpf__destroy);
  if (!skel) return libbpf_error("opening the eBPF object", errno, log);
  skel->rodata->runq_event_threshold_ns = options.runq_event_threshold_ns;
  skel->rodata->stall_event_threshold_ns = options.stall_event_threshold_ns;
  skel->rodata->stall_window_ns = options.stall_window_ns;
  skel->rodata->event_interval_ns = options.event_interval_ns;

  std::set<std::string> wanted;
  for (const auto* probe : probes) wanted.insert(probe->programs.begin(), probe->programs.end());
  bpf_program* program = nullptr;
  bpf_object__for_each_program(program, skel->obj) {
    bpf_program__set_autoload(program, wanted.count(bpf_program__name(program)) > 0);
  }
  if (const int err = ebb_probes_bpf__load(skel.get()); err != 0) {
    return libbpf_error("loading eBPF programs", -err, log);
  }
  return skel;
}

std::optional<std::string> read_available_filter_functions() {
  for (const char* path : {"/sys/kernel/tracing/available_filter_functions",
                           "/sys/kernel/debug/tracing/available_filter_functions"}) {
    std::ifstream in(path);
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  return std::nullopt;
}

// libbpf attaches kprobes through the perf kprobe PMU, or else through tracefs kprobe_events;
// with neither (a kernel without CONFIG_KPROBES) no kprobe can attach.
bool kprobes_available() {
  std::error_code ec;
  for (const char* path : {"/sys/bus/event_source/devices/kprobe/type", "/sys/kernel/tracing/kprobe_events",
                           "/sys/kernel/debug/tracing/kprobe_events"}) {
    if (std::filesystem::exists(path, ec)) return true;
  }
  return false;
}

class BpfProbeSource final : public ProbeSource {
 public:
  BpfProbeSource(Skeleton skel, std::vector<Link> links, std::vector<ProbeStatus> status, int cpus)
      : skel_(std::move(skel)),
        links_(std::move(links)),
        status_(std::move(status)),
        cpus_(static_cast<std::size_t>(cpus)),
        per_cpu_(cpus_),
        ring_(nullptr, ring_buffer__free) {}

  Status open_ring_buffer() {
    ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.events), &BpfProbeSource::on_record, this, nullptr));
    if (!ring_) return system_error("creating the eBPF ring buffer reader", {}, errno);
    return ok_status();
  }

  std::vector<ProbeStatus> status() const override { return status_; }

  Status track(std::uint64_t cgroup_id) override {
    if (tracked_.count(cgroup_id)) return ok_status();
    const std::vector<ebb_cgroup_stats> zeros(cpus_);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.tracked), &cgroup_id, zeros.data(), BPF_NOEXIST) != 0 &&
        errno != EEXIST) {
      return system_error("tracking cgroup id " + std::to_string(cgroup_id) + " in the eBPF map", {}, errno);
    }
    tracked_.insert(cgroup_id);
    return ok_status();
  }

  Status untrack(std::uint64_t cgroup_id) override {
    if (!tracked_.erase(cgroup_id)) return ok_status();
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.tracked), &cgroup_id) != 0 && errno != ENOENT) {
      return system_error("untracking cgroup id " + std::to_string(cgroup_id) + " in the eBPF map", {}, errno);
    }
    return ok_status();
  }

  // One syscall for all cgroups: with hundreds of them at a 100 ms tick, a lookup each would be
  // most of ebbd's own CPU time.
  Result<std::unordered_map<std::uint64_t, CgroupCounters>> read() override {
    std::unordered_map<std::uint64_t, CgroupCounters> out;
    const std::size_t cpus = cpus_;
    keys_.resize(std::max<std::size_t>(tracked_.size(), 1));
    per_cpu_.resize(keys_.size() * cpus);
    const int fd = bpf_map__fd(skel_->maps.tracked);
    std::uint64_t batch = 0;  // the kernel's cursor (a bucket index) between calls
    for (bool first = true;; first = false) {
      auto count = static_cast<__u32>(keys_.size());
      const int err = bpf_map_lookup_batch(fd, first ? nullptr : &batch, &batch, keys_.data(), per_cpu_.data(),
                                           &count, nullptr);
      for (std::size_t i = 0; i < count; ++i) {
        out.emplace(keys_[i], sum_per_cpu(std::span(per_cpu_).subspan(i * cpus, cpus)));
      }
      if (err == 0) continue;
      if (err == -ENOENT) break;  // the end of the map
      return system_error("reading eBPF counters", {}, -err);
    }
    return out;
  }

  int event_fd() const override { return ring_buffer__epoll_fd(ring_.get()); }

  void consume(const std::function<void(const Event&)>& on_event) override {
    handler_ = &on_event;
    // Errors here are EINTR or a record this build cannot decode; either way the next
    // consume() goes on from where this one stopped.
    ring_buffer__consume(ring_.get());
    handler_ = nullptr;
  }

 private:
  static int on_record(void* self, void* data, std::size_t size) {
    auto* source = static_cast<BpfProbeSource*>(self);
    const auto event = decode_event({static_cast<const std::byte*>(data), size});
    if (event && source->handler_ != nullptr) (*source->handler_)(*event);
    return 0;
  }

  Skeleton skel_;  // declared first: links and the ring buffer must go before the object
  std::vector<Link> links_;
  std::vector<ProbeStatus> status_;
  std::size_t cpus_;
  std::vector<std::uint64_t> keys_;           // read()'s buffers, kept between ticks
  std::vector<ebb_cgroup_stats> per_cpu_;     // cpus_ values per key
  RingBuffer ring_;
  std::unordered_set<std::uint64_t> tracked_;
  const std::function<void(const Event&)>* handler_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<ProbeSource>> open_bpf_probes(const Options& options) {
  LibbpfLogCapture log;
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return system_error("counting possible CPUs", "/sys/devices/system/cpu/possible", -cpus);

  std::vector<ProbeStatus> status;
  std::vector<const ProbeDef*> candidates;
  const auto filter_functions = read_available_filter_functions();
  const bool kprobes = kprobes_available();
  // Without tracefs there is no list to check: the attach itself tells whether it can.
  for (const auto& def : probe_defs()) {
    status.push_back({def.name, false, {}});
    if (def.kprobe_function && !kprobes) {
      status.back().detail = "this kernel has no kprobes (no kprobe PMU, no tracefs kprobe_events)";
    } else if (def.kprobe_function && filter_functions && !lists_function(*filter_functions, def.kprobe_function)) {
      status.back().detail = std::string(def.kprobe_function) + " is not in available_filter_functions";
    } else {
      candidates.push_back(&def);
    }
  }
  auto find_status = [&](const ProbeDef& def) -> ProbeStatus& {
    return status[static_cast<std::size_t>(&def - probe_defs().data())];
  };

  auto skel = open_and_load(options, candidates, log);
  if (!skel) {
    // One program the verifier rejects fails the whole load: find which, one at a time.
    std::vector<const ProbeDef*> loadable;
    for (const auto* def : candidates) {
      if (auto alone = open_and_load(options, {def}, log)) {
        loadable.push_back(def);
      } else {
        find_status(*def).detail = "load failed: " + alone.error().to_string();
      }
    }
    if (loadable.empty()) return Error{"no eBPF probe loads: " + skel.error().to_string()};
    skel = open_and_load(options, loadable, log);
    if (!skel) return skel.error();
    candidates = std::move(loadable);
  }

  std::vector<Link> links;
  for (const auto* def : candidates) {
    std::vector<Link> probe_links;
    for (const char* name : def->programs) {
      bpf_link* link = bpf_program__attach(bpf_object__find_program_by_name(skel->get()->obj, name));
      if (link == nullptr) {
        find_status(*def).detail = libbpf_error(std::string("attaching ") + name, errno, log).to_string();
        probe_links.clear();
        break;
      }
      probe_links.emplace_back(link, bpf_link__destroy);
    }
    find_status(*def).attached = !probe_links.empty();
    for (auto& link : probe_links) links.push_back(std::move(link));
  }
  if (links.empty()) return Error{"no eBPF probe attaches: " + describe(status)};

  auto source = std::make_unique<BpfProbeSource>(std::move(*skel), std::move(links), std::move(status), cpus);
  if (auto opened = source->open_ring_buffer(); !opened) return opened.error();
  return std::unique_ptr<ProbeSource>(std::move(source));
}

}  // namespace ebb::probes
