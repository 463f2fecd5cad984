#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "daemon/probes/decode.h"

using namespace ebb::probes;

namespace {

std::vector<std::byte> record_of(const ebb_event& raw) {
  std::vector<std::byte> bytes(sizeof(raw));
  std::memcpy(bytes.data(), &raw, sizeof(raw));
  return bytes;
}

}  // namespace

TEST_CASE("per-CPU copies of a cgroup's counters are summed field by field") {
  std::vector<ebb_cgroup_stats> per_cpu(3);
  per_cpu[0].cpu_ns = 1'000;
  per_cpu[1].cpu_ns = 2'000;
  per_cpu[2].cpu_ns = 30;
  per_cpu[0].runq_count = 2;
  per_cpu[0].runq_sum_ns = 3'000;
  per_cpu[0].runq_buckets[10] = 2;
  per_cpu[2].runq_count = 1;
  per_cpu[2].runq_sum_ns = 70'000;
  per_cpu[2].runq_buckets[16] = 1;
  per_cpu[1].involuntary_switches = 4;
  per_cpu[2].involuntary_switches = 5;
  per_cpu[0].reclaim_stall_ns = 11;
  per_cpu[1].reclaim_stall_ns = 22;
  per_cpu[1].oom_kills = 1;
  per_cpu[0].throttle_episodes = 6;
  per_cpu[1].throttle_episodes = 1;

  const auto c = sum_per_cpu(per_cpu);
  CHECK(c.cpu_ns == 3'030);
  CHECK(c.runq_latency.count == 3);
  CHECK(c.runq_latency.sum_ns == 73'000);
  CHECK(c.runq_latency.buckets[10] == 2);
  CHECK(c.runq_latency.buckets[16] == 1);
  CHECK(c.involuntary_switches == 9);
  CHECK(c.reclaim_stall_ns == 33);
  CHECK(c.oom_kills == 1);
  CHECK(c.throttle_episodes == 7);
}

// Recorded in the VM (Debian 6.1, 2 CPUs): a lookup of the tracked map for a cgroup whose
// process ran about 2 s, was preempted 216 times and was then OOM-killed on CPU 1. Fields in
// ebb_cgroup_stats order: cpu_ns, runq_count, runq_sum_ns, 32 buckets, involuntary_switches,
// reclaim_stall_ns, oom_kills, throttle_episodes; then the kernel-only stall window (start,
// sum), which did not exist yet when this was recorded: zero here, and never summed.
constexpr std::uint64_t kRecordedPerCpu[2][41] = {
    {88983733, 20, 3836640, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 6, 4, 1, 3, 1, 0, 0, 0, 1,
     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0},
    {2033067473, 196, 31246000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 66, 86, 6, 9, 17, 5, 3, 1, 1, 0,
     0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 196, 0, 1, 0, 0, 0},
};

TEST_CASE("recorded per-CPU values of a real cgroup sum to its counters and percentiles") {
  static_assert(sizeof(kRecordedPerCpu[0]) == sizeof(ebb_cgroup_stats));
  std::vector<ebb_cgroup_stats> per_cpu(2);
  std::memcpy(per_cpu.data(), kRecordedPerCpu, sizeof(kRecordedPerCpu));

  const auto c = sum_per_cpu(per_cpu);
  CHECK(c.cpu_ns == 2'122'051'206);
  CHECK(c.runq_latency.count == 216);
  CHECK(c.runq_latency.sum_ns == 35'082'640);
  CHECK(c.runq_latency.buckets[13] == 92);
  CHECK(c.involuntary_switches == 216);
  CHECK(c.reclaim_stall_ns == 0);
  CHECK(c.oom_kills == 1);
  CHECK(c.throttle_episodes == 0);
  CHECK(c.runq_latency.percentile_ns(0.5) == 16384);    // rank 108 of 216 is in [8, 16) us
  CHECK(c.runq_latency.percentile_ns(0.99) == 4194304);  // rank 214 is in [2, 4) ms
}

TEST_CASE("recorded ring-buffer records decode to what the kernel sent") {
  // An OOM kill in cgroup 23 (VM, Debian 6.1) and a 9.7 ms run-queue wait in cgroup 2001
  // (host, 6.18), as ring_buffer__consume handed them over.
  const std::uint8_t oom_kill[] = {0x80, 0xa0, 0x2d, 0x60, 0x06, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const std::uint8_t runq_wait[] = {0xc9, 0x28, 0x00, 0x63, 0x2a, 0x04, 0x00, 0x00, 0xd1, 0x07, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x86, 0x94, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const auto oom = decode_event(std::as_bytes(std::span(oom_kill)));
  REQUIRE(oom.ok());
  CHECK(oom->kind == Event::Kind::oom_kill);
  CHECK(oom->cgroup_id == 23);
  CHECK(oom->value_ns == 0);
  CHECK(oom->timestamp_ns == 27383406720);

  const auto wait = decode_event(std::as_bytes(std::span(runq_wait)));
  REQUIRE(wait.ok());
  CHECK(wait->kind == Event::Kind::runq_latency);
  CHECK(wait->cgroup_id == 2001);
  CHECK(wait->value_ns == 9'733'651);
  CHECK(wait->timestamp_ns == 4580096092361);
}

TEST_CASE("no CPUs sum to zero counters") {
  const auto c = sum_per_cpu({});
  CHECK(c.cpu_ns == 0);
  CHECK(c.runq_latency.count == 0);
  CHECK(c.runq_latency.percentile_ns(0.99) == 0);
}

TEST_CASE("ring-buffer records decode to events of each kind") {
  const std::pair<std::uint32_t, Event::Kind> kinds[] = {
      {EBB_EVENT_OOM_KILL, Event::Kind::oom_kill},
      {EBB_EVENT_RUNQ_LATENCY, Event::Kind::runq_latency},
      {EBB_EVENT_RECLAIM_STALL, Event::Kind::reclaim_stall},
      {EBB_EVENT_THROTTLED, Event::Kind::throttled},
  };
  for (const auto& [raw_kind, kind] : kinds) {
    const auto event = decode_event(record_of({123'456'789, 4242, 7'000'000, raw_kind, 0}));
    REQUIRE(event.ok());
    CHECK(event->kind == kind);
    CHECK(event->cgroup_id == 4242);
    CHECK(event->value_ns == 7'000'000);
    CHECK(event->timestamp_ns == 123'456'789);
  }
}

TEST_CASE("a short record or an unknown kind is an error, not an event") {
  auto bytes = record_of({1, 2, 3, EBB_EVENT_RUNQ_LATENCY, 0});
  bytes.pop_back();
  CHECK_FALSE(decode_event(bytes).ok());
  CHECK_FALSE(decode_event(record_of({1, 2, 3, EBB_EVENT_KINDS, 0})).ok());
}

TEST_CASE("event kinds have stable names") {
  CHECK(std::string(to_string(Event::Kind::oom_kill)) == "oom_kill");
  CHECK(std::string(to_string(Event::Kind::runq_latency)) == "runq_latency");
  CHECK(std::string(to_string(Event::Kind::reclaim_stall)) == "reclaim_stall");
  CHECK(std::string(to_string(Event::Kind::throttled)) == "throttled");
}

TEST_CASE("percentiles are the upper bound of the log2 bucket holding the quantile") {
  LatencyHistogram h;
  h.buckets[10] = 90;  // [1024, 2048) ns
  h.buckets[20] = 9;   // [1 Mi, 2 Mi) ns
  h.buckets[25] = 1;
  h.count = 100;
  CHECK(h.percentile_ns(0.0) == 2048);
  CHECK(h.percentile_ns(0.5) == 2048);
  CHECK(h.percentile_ns(0.90) == 2048);
  CHECK(h.percentile_ns(0.91) == 2097152);
  CHECK(h.percentile_ns(0.99) == 2097152);
  CHECK(h.percentile_ns(0.995) == 67108864);
  CHECK(h.percentile_ns(1.0) == 67108864);
}

TEST_CASE("a single sample is every percentile") {
  LatencyHistogram h;
  h.buckets[0] = 1;  // a wait of 0 or 1 ns
  CHECK(h.percentile_ns(0.5) == 2);
  CHECK(h.percentile_ns(0.99) == 2);
}

TEST_CASE("available_filter_functions is matched on whole names, with or without a module") {
  const std::string text =
      "throttle_cfs_rq_charge\n"
      "oom_kill_process\n"
      "unthrottle_cfs_rq\n"
      "nf_ct_throttle [nf_conntrack]\n";
  CHECK(lists_function(text, "oom_kill_process"));
  CHECK(lists_function(text, "nf_ct_throttle"));
  CHECK_FALSE(lists_function(text, "throttle_cfs_rq"));
  CHECK_FALSE(lists_function(text, "oom_kill"));
  CHECK_FALSE(lists_function("", "oom_kill_process"));
}

TEST_CASE("the status line names active probes and why the others are not") {
  const std::vector<ProbeStatus> status{
      {"sched_switch", true, ""},
      {"oom_kill", true, ""},
      {"throttle_cfs_rq", false, "throttle_cfs_rq is not in available_filter_functions"},
  };
  CHECK(describe(status) ==
        "active: sched_switch, oom_kill; inactive: throttle_cfs_rq: throttle_cfs_rq is not in "
        "available_filter_functions");
  CHECK(describe({{"sched_switch", false, "load failed"}}) == "active: none; inactive: sched_switch: load failed");
}

TEST_CASE("a histogram since an earlier read holds only the samples in between") {
  LatencyHistogram earlier, later;
  earlier.buckets[13] = 4, earlier.count = 4, earlier.sum_ns = 40'000;
  later.buckets[13] = 6, later.buckets[24] = 1, later.count = 7, later.sum_ns = 20'060'000;
  const auto window = later.since(earlier);
  CHECK(window.buckets[13] == 2);
  CHECK(window.buckets[24] == 1);
  CHECK(window.count == 3);
  CHECK(window.sum_ns == 20'020'000);
  CHECK(window.percentile_ns(0.99) == 33554432);  // the one 16-32 ms wait, not hidden by the earlier four
  // Tracked anew (counts restarted below the earlier read): nothing, not a wrap-around.
  CHECK(earlier.since(later).count == 0);
  CHECK(earlier.since(later).buckets[24] == 0);
}
