// The probes on the kernel this test runs on: real load, real attach, a real cgroup. Needs
// root, BTF and a cgroup2 mount; anywhere else it says why with a WARN and checks nothing.
#include <poll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "daemon/probes/probes.h"
#include "tests/probes/real_cgroup.h"

using namespace ebb::probes;
using namespace std::chrono_literals;
using ebb::testing::ScratchCgroup;

namespace {

// Why this machine cannot run the test, or empty when it can.
std::string missing_requirement() {
  if (::geteuid() != 0) return "not root";
  struct stat st {};
  if (::stat("/sys/kernel/btf/vmlinux", &st) != 0) return "no kernel BTF at /sys/kernel/btf/vmlinux";
  if (!ebb::testing::cgroup2_mount()) return "no cgroup2 mount";
  return {};
}

std::string scratch_name(std::string_view what) {
  return "ebb-probes-test-" + std::string(what) + "-" + std::to_string(::getpid());
}

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

TEST_CASE("host: a busy process's CPU time reaches its tracked cgroup, in line with cpu.stat") {
  if (const auto why = missing_requirement(); !why.empty()) {
    WARN("skipped, the probes cannot be loaded here: " << why);
    return;
  }
  auto probes = open_bpf_probes(Options{});
  if (!probes) FAIL(probes.error().to_string());
  const auto status = (*probes)->status();
  INFO(describe(status));
  REQUIRE(status.at(0).name == "sched_switch");
  REQUIRE(status.at(0).attached);

  const auto mount = *ebb::testing::cgroup2_mount();
  ScratchCgroup busy(mount, scratch_name("busy"));
  ScratchCgroup idle(mount, scratch_name("idle"));
  REQUIRE((*probes)->track(busy.id()).ok());
  REQUIRE((*probes)->track(idle.id()).ok());
  idle.spawn([] { std::this_thread::sleep_for(1h); });

  const auto usage_before = busy.usage_usec();
  busy.spawn(ebb::testing::spin_forever);
  std::this_thread::sleep_for(1s);
  auto counters = (*probes)->read();
  const auto usage_after = busy.usage_usec();
  REQUIRE(counters.ok());

  const double bpf_ms = static_cast<double>(counters->at(busy.id()).cpu_ns) / 1e6;
  const double stat_ms = static_cast<double>(usage_after - usage_before) / 1e3;
  INFO("BPF " << bpf_ms << " ms, cpu.stat " << stat_ms << " ms");
  CHECK(stat_ms > 50);  // the spinner ran at all on this shared machine
  // The BPF read comes a little before the second cpu.stat read: a margin for that gap.
  CHECK(bpf_ms == Approx(stat_ms).epsilon(0.10));
  // Relative: under emulation the idle child's fork alone takes milliseconds.
  CHECK(static_cast<double>(counters->at(idle.id()).cpu_ns) / 1e6 < 0.05 * bpf_ms);

  REQUIRE((*probes)->untrack(busy.id()).ok());
  CHECK((*probes)->read()->count(busy.id()) == 0);
}

TEST_CASE("host: wake-ups in a tracked cgroup give run-queue latency and rate-limited ring-buffer events") {
  if (const auto why = missing_requirement(); !why.empty()) {
    WARN("skipped, the probes cannot be loaded here: " << why);
    return;
  }
  Options options;
  options.runq_event_threshold_ns = 1;  // every wait is an event, before the rate limit
  options.event_interval_ns = 100'000'000;
  auto probes = open_bpf_probes(options);
  if (!probes) FAIL(probes.error().to_string());
  INFO(describe((*probes)->status()));

  ScratchCgroup waker(*ebb::testing::cgroup2_mount(), scratch_name("waker"));
  REQUIRE((*probes)->track(waker.id()).ok());
  const auto started_ns = monotonic_ns();
  waker.spawn([] { ebb::testing::duty_cycle(100us, 1ms); });

  std::vector<Event> events;
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{(*probes)->event_fd(), POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) (*probes)->consume([&](const Event& e) { events.push_back(e); });
  }
  const auto counters = (*probes)->read();
  REQUIRE(counters.ok());
  const auto& latency = counters->at(waker.id()).runq_latency;
  INFO("run-queue samples " << latency.count << ", events " << events.size());
  CHECK(latency.count > 100);  // about 1000 wake-ups in the second
  CHECK(latency.percentile_ns(0.5) > 0);
  CHECK(latency.percentile_ns(0.5) <= latency.percentile_ns(0.99));

  REQUIRE(!events.empty());
  for (const auto& e : events) {
    CHECK(e.kind == Event::Kind::runq_latency);
    CHECK(e.cgroup_id == waker.id());
    CHECK(e.timestamp_ns >= started_ns);
    CHECK(e.timestamp_ns <= monotonic_ns());
  }
  // One per 100 ms, plus the rare duplicate of two CPUs racing on the limiter.
  CHECK(events.size() <= 2 * 11);
}
