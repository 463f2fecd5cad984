// Issue 3's "must show" a-d, and PSI triggers, on a real kernel with cgroup v2 controllers: run
// inside the VM by tests/vm/probes/run.sh. A missing requirement is a failure here, not a skip:
// the VM is supposed to provide everything.
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>

#include "daemon/probes/probes.h"
#include "daemon/probes/psi_trigger.h"
#include "tests/probes/real_cgroup.h"

using namespace ebb::probes;
using namespace std::chrono_literals;
using ebb::testing::ScratchCgroup;

namespace {

std::uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// A parent cgroup below the cgroup2 root with cpu, memory and cpuset delegated to children.
struct VmFixture {
  VmFixture()
      : root(*ebb::testing::cgroup2_mount()),
        parent(root, "ebb-probes-vm-" + std::to_string(::getpid())),
        probes(open_bpf_probes(options())) {
    parent.write("cgroup.subtree_control", "+cpu +memory +cpuset");
    if (!probes) FAIL("probes do not load: " << probes.error().to_string());
    WARN("probes " << describe(source().status()));
  }

  static Options options() {
    Options o;
    o.stall_event_threshold_ns = 1'000'000;
    return o;
  }

  ProbeSource& source() { return **probes; }

  std::unique_ptr<ScratchCgroup> child(std::string_view name) {
    auto cg = std::make_unique<ScratchCgroup>(parent.path(), name);
    REQUIRE(source().track(cg->id()).ok());
    return cg;
  }

  CgroupCounters counters(const ScratchCgroup& cg) {
    auto all = source().read();
    REQUIRE(all.ok());
    return all->at(cg.id());
  }

  // Events for up to `timeout`, stopping early once `done` says so.
  std::vector<std::pair<Event, std::uint64_t>> collect(std::chrono::milliseconds timeout,
                                                        const std::function<bool(const Event&)>& done) {
    std::vector<std::pair<Event, std::uint64_t>> out;  // with the time user space got it
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool finished = false;
    while (!finished && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{source().event_fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      source().consume([&](const Event& e) {
        out.emplace_back(e, monotonic_ns());
        finished = finished || done(e);
      });
    }
    return out;
  }

  std::filesystem::path root;
  ScratchCgroup parent;  // destroyed after the children the tests create
  ebb::Result<std::unique_ptr<ProbeSource>> probes;
};

// SCHED_FIFO for the calling thread during its lifetime.
class RealTime {
 public:
  RealTime() {
    sched_param param{};
    param.sched_priority = 1;
    REQUIRE(::sched_setscheduler(0, SCHED_FIFO, &param) == 0);
  }
  ~RealTime() {
    sched_param param{};
    ::sched_setscheduler(0, SCHED_OTHER, &param);
  }
  RealTime(const RealTime&) = delete;
  RealTime& operator=(const RealTime&) = delete;
};

// Pins the calling thread to one CPU for its lifetime.
class PinnedToCpu {
 public:
  explicit PinnedToCpu(int cpu) {
    REQUIRE(::sched_getaffinity(0, sizeof(previous_), &previous_) == 0);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    REQUIRE(::sched_setaffinity(0, sizeof(one), &one) == 0);
  }
  ~PinnedToCpu() { ::sched_setaffinity(0, sizeof(previous_), &previous_); }
  PinnedToCpu(const PinnedToCpu&) = delete;
  PinnedToCpu& operator=(const PinnedToCpu&) = delete;

 private:
  cpu_set_t previous_;
};

// Touches `bytes` of fresh anonymous memory page by page, then holds it for `hold`.
void allocate(std::size_t bytes, std::chrono::milliseconds hold) {
  constexpr std::size_t chunk = 1 << 20;
  for (std::size_t done = 0; done < bytes; done += chunk) {
    void* p = ::mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(3);
    std::memset(p, 1, chunk);
  }
  std::this_thread::sleep_for(hold);
}

}  // namespace

TEST_CASE_METHOD(VmFixture, "a: BPF CPU time per cgroup agrees with cpu.stat usage_usec within 5%") {
  auto full = child("full");
  auto third = child("third");
  full->spawn(ebb::testing::spin_forever);
  third->spawn([] { ebb::testing::duty_cycle(3ms, 10ms); });
  std::this_thread::sleep_for(200ms);  // past the fork and the first stints
  // As a real-time task this process is not preempted by the loads between its reads.
  const RealTime real_time;
  // cpu.stat read just before and just after each BPF read: their mean is the usage at the
  // moment of the BPF read, even when a syscall is slow and the spinner runs on meanwhile.
  const auto sample = [&](const ScratchCgroup& cg) {
    const auto stat_before = cg.usage_usec();
    const auto bpf = counters(cg).cpu_ns;
    const auto stat_after = cg.usage_usec();
    return std::pair{static_cast<double>(bpf) / 1e6, static_cast<double>(stat_before + stat_after) / 2e3};
  };
  const auto [bpf_before_full, stat_before_full] = sample(*full);
  const auto [bpf_before_third, stat_before_third] = sample(*third);
  std::this_thread::sleep_for(4s);
  const auto [bpf_after_full, stat_after_full] = sample(*full);
  const auto [bpf_after_third, stat_after_third] = sample(*third);
  const double bpf_full = bpf_after_full - bpf_before_full, stat_full = stat_after_full - stat_before_full;
  const double bpf_third = bpf_after_third - bpf_before_third, stat_third = stat_after_third - stat_before_third;

  INFO("full: BPF " << bpf_full << " ms, cpu.stat " << stat_full << " ms; third: BPF " << bpf_third
                    << " ms, cpu.stat " << stat_third << " ms");
  CHECK(stat_third < 0.9 * stat_full);  // the loads differ (emulation stretches the duty cycle)
  CHECK(bpf_full == Approx(stat_full).epsilon(0.05));
  CHECK(bpf_third == Approx(stat_third).epsilon(0.05));
  std::cout << "=> a: full BPF " << bpf_full << " ms vs cpu.stat " << stat_full << " ms; third BPF " << bpf_third
            << " ms vs cpu.stat " << stat_third << " ms" << std::endl;
}

TEST_CASE_METHOD(VmFixture, "b: two CPU-bound cgroups sharing one CPU wait far longer to run than one alone") {
  auto first = child("shared-1");
  auto second = child("shared-2");
  auto alone = child("alone");
  first->write("cpuset.cpus", "0");
  second->write("cpuset.cpus", "0");
  alone->write("cpuset.cpus", "1");
  // This process stays off the lone one's CPU, so that only the kernel's own threads can make
  // it wait.
  const PinnedToCpu pinned(0);
  // Busy 90% of the time: CPU-bound, yet waking up often enough that even the lone one has
  // hundreds of samples, so a single stray kernel thread on its CPU does not make its p99.
  // Under emulation the lone one's p99 still reached the 8-16 ms bucket in some runs, as high
  // as two shared tasks waited for each other (CFS's 12 ms period split in two), so the
  // shared CPU has eight such tasks per cgroup: sixteen, each waiting for fifteen slices of at
  // least 1.5 ms.
  constexpr int kTasksPerSharedCgroup = 8;
  const auto busy = [] { ebb::testing::duty_cycle(9ms, 10ms); };
  for (int i = 0; i < kTasksPerSharedCgroup; ++i) first->spawn(busy), second->spawn(busy);
  alone->spawn(busy);
  // Counted after a warm-up, so that forks and first page-ins are not in the window.
  std::this_thread::sleep_for(1s);
  const auto warm = source().read();
  REQUIRE(warm.ok());
  std::this_thread::sleep_for(3s);

  struct Waits {
    double p99, mean;
    std::uint64_t count;
  };
  const auto waits = [&](const ScratchCgroup& cg) {
    const auto h = counters(cg).runq_latency.since(warm->at(cg.id()).runq_latency);
    return Waits{h.percentile_ns(0.99), h.count ? static_cast<double>(h.sum_ns) / static_cast<double>(h.count) : 0,
                 h.count};
  };
  const Waits shared[] = {waits(*first), waits(*second)};
  const Waits solo = waits(*alone);
  std::ostringstream figures;
  figures << "b: run-queue p99 shared " << shared[0].p99 / 1e6 << " / " << shared[1].p99 / 1e6 << " ms, alone "
          << solo.p99 / 1e6 << " ms; mean shared " << shared[0].mean / 1e6 << " / " << shared[1].mean / 1e6
          << " ms, alone " << solo.mean / 1e6 << " ms; samples " << shared[0].count << " / " << shared[1].count
          << " / " << solo.count;
  INFO(figures.str());
  CHECK(solo.count > 10);
  for (const auto& s : shared) {
    CHECK(s.count > 10);
    CHECK(s.p99 >= 1e6);  // the other one's slice: at least a millisecond
    // Log2 buckets: twice is at least one bucket higher. Emulation makes even an idle CPU's
    // wake-up take milliseconds, so the ratio is far smaller here than on hardware.
    CHECK(s.p99 >= 2 * solo.p99);
    CHECK(s.mean >= 3 * solo.mean);
  }
  std::cout << "=> " << figures.str() << std::endl;
}

TEST_CASE_METHOD(VmFixture, "c: an OOM kill past memory.max arrives through the ring buffer within a tick") {
  auto victim = child("oom");
  victim->write("memory.max", std::to_string(64 << 20));
  if (std::filesystem::exists(victim->path() / "memory.swap.max")) victim->write("memory.swap.max", "0");
  const pid_t pid = victim->spawn([] { allocate(512u << 20, 0ms); });

  const auto events = collect(10s, [&](const Event& e) {
    return e.kind == Event::Kind::oom_kill && e.cgroup_id == victim->id();
  });
  const int status = victim->wait(pid);
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));

  const auto found = std::find_if(events.begin(), events.end(), [&](const auto& e) {
    return e.first.kind == Event::Kind::oom_kill && e.first.cgroup_id == victim->id();
  });
  REQUIRE(found != events.end());
  const double delivery_ms = static_cast<double>(found->second - found->first.timestamp_ns) / 1e6;
  INFO("delivered " << delivery_ms << " ms after the kill");
  CHECK(delivery_ms < 200);  // ebbd's default tick
  CHECK(counters(*victim).oom_kills >= 1);
  CHECK(victim->read("memory.events").find("oom_kill 0") == std::string::npos);
  std::cout << "=> c: OOM kill of cgroup " << victim->id() << " delivered " << delivery_ms << " ms after the kill"
            << std::endl;
}

TEST_CASE_METHOD(VmFixture, "d: reclaim stall under memory.high is reported for that cgroup and not for an idle neighbour") {
  auto squeezed = child("squeezed");
  auto idle = child("idle");
  squeezed->write("memory.high", std::to_string(32 << 20));
  idle->spawn([] { allocate(16u << 20, 1h); });
  // Without swap nothing can be reclaimed, so the kernel throttles this child for seconds at
  // each attempt: it is killed at the end rather than waited for.
  squeezed->spawn([] { allocate(96u << 20, 0ms); });

  const auto events = collect(8s, [&](const Event& e) {
    return e.kind == Event::Kind::reclaim_stall && e.cgroup_id == squeezed->id();
  });
  const auto stalled = counters(*squeezed).reclaim_stall_ns;
  const auto neighbour = counters(*idle).reclaim_stall_ns;
  INFO("reclaim stall: squeezed " << stalled << " ns, idle neighbour " << neighbour << " ns");
  CHECK(stalled > 1'000'000);
  CHECK(neighbour == 0);
  CHECK(std::any_of(events.begin(), events.end(), [&](const auto& e) {
    return e.first.kind == Event::Kind::reclaim_stall && e.first.cgroup_id == squeezed->id();
  }));
  std::cout << "=> d: reclaim stall squeezed " << stalled << " ns, idle neighbour " << neighbour << " ns" << std::endl;
}

TEST_CASE_METHOD(VmFixture, "psi: a cpu.pressure trigger fires for a cgroup starved by cpu.max and not for an idle one") {
  auto starved = child("starved");
  auto idle = child("calm");
  starved->write("cpu.max", "1000 100000");  // 1% of a CPU
  auto starved_trigger = PsiTrigger::open(starved->path(), PressureResource::cpu, 50ms, 500ms);
  auto idle_trigger = PsiTrigger::open(idle->path(), PressureResource::cpu, 50ms, 500ms);
  REQUIRE(starved_trigger.ok());
  REQUIRE(idle_trigger.ok());
  idle->spawn([] { std::this_thread::sleep_for(1h); });
  starved->spawn(ebb::testing::spin_forever);

  const auto started = std::chrono::steady_clock::now();
  auto fired = starved_trigger->wait(5s);
  const auto waited_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  REQUIRE(fired.ok());
  CHECK(*fired);
  CHECK(*idle_trigger->wait(0ms) == false);
  std::cout << "=> psi: trigger on the starved cgroup fired after " << waited_ms << " ms" << std::endl;
}
