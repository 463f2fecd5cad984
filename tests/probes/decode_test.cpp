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
