#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <deque>
#include <set>
#include <sstream>

#include "daemon/cgroup/cgroup.h"
#include "daemon/probes/probe_command.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::probes;
using namespace std::chrono_literals;

namespace {

// Probes without a kernel: every tracked cgroup has used (its rank in tracking order) ms of CPU,
// and queued events are delivered through a pipe, as the ring buffer's epoll fd would.
class FakeProbes final : public ProbeSource {
 public:
  FakeProbes() { REQUIRE(::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) == 0); }
  ~FakeProbes() override {
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }

  void queue(Event e) {
    pending_.push_back(e);
    REQUIRE(::write(pipe_[1], "x", 1) == 1);
  }

  std::vector<ProbeStatus> status() const override {
    return {{"sched_switch", true, ""}, {"oom_kill", false, "this kernel has no kprobes"}};
  }
  ebb::Status track(std::uint64_t id) override {
    tracked_.push_back(id);
    return ebb::ok_status();
  }
  ebb::Status untrack(std::uint64_t) override { return ebb::ok_status(); }
  ebb::Result<std::unordered_map<std::uint64_t, CgroupCounters>> read() override {
    std::unordered_map<std::uint64_t, CgroupCounters> out;
    for (std::size_t i = 0; i < tracked_.size(); ++i) {
      CgroupCounters c;
      c.cpu_ns = (i + 1) * 1'000'000;
      c.runq_latency.buckets[12] = 3;  // p50 and p99: 8192 ns
      c.runq_latency.count = 3;
      c.oom_kills = i;
      out.emplace(tracked_[i], c);
    }
    return out;
  }
  int event_fd() const override { return pipe_[0]; }
  void consume(const std::function<void(const Event&)>& on_event) override {
    char drain[64];
    while (::read(pipe_[0], drain, sizeof(drain)) > 0) {
    }
    for (; !pending_.empty(); pending_.pop_front()) on_event(pending_.front());
  }

  const std::vector<std::uint64_t>& tracked() const { return tracked_; }

 private:
  int pipe_[2];
  std::deque<Event> pending_;
  std::vector<std::uint64_t> tracked_;
};

struct CommandFixture {
  CommandFixture() {
    tree.add_cgroup("ebb.slice/web.service");
    tree.add_cgroup("ebb.slice/batch.service");
    tree.add_cgroup("system.slice/sshd.service");
    options.cgroup_root = tree.root();
    options.selectors = {"ebb.slice/*"};
    options.duration = 50ms;
  }
  std::uint64_t id_of(const std::string& path) const {
    return ebb::cgroup::CgroupFs(tree.root()).cgroup_id(path).value();
  }

  ebb::testing::FakeCgroupTree tree;
  ProbeCommandOptions options;
  FakeProbes probes;
  std::ostringstream out, err;
};

}  // namespace

TEST_CASE_METHOD(CommandFixture, "ebbd probe -o json reports each selected cgroup by path with its counters and events") {
  options.json = true;
  probes.queue({Event::Kind::oom_kill, id_of("ebb.slice/web.service"), 0, 1});
  probes.queue({Event::Kind::runq_latency, 999, 6'000'000, 2});  // not a probed cgroup

  REQUIRE(run_probe_command(options, probes, out, err) == 0);
  CHECK(err.str().empty());
  const auto report = nlohmann::json::parse(out.str());
  CHECK(report["duration_ns"] == 50'000'000);
  REQUIRE(report["probes"].size() == 2);
  CHECK(report["probes"][1]["attached"] == false);
  CHECK(report["probes"][1]["detail"] == "this kernel has no kprobes");

  const auto& cgroups = report["cgroups"];
  REQUIRE(cgroups.size() == 2);  // sorted by path; sshd is not selected
  CHECK(cgroups[0]["path"] == "ebb.slice/batch.service");
  CHECK(cgroups[1]["path"] == "ebb.slice/web.service");
  CHECK(cgroups[1]["id"] == id_of("ebb.slice/web.service"));
  CHECK(cgroups[1]["cpu_ns"] == 2'000'000);
  CHECK(cgroups[1]["oom_kills"] == 1);
  CHECK(cgroups[1]["runq_latency"]["p99_ns"] == 8192.0);
  CHECK(cgroups[1]["events"]["oom_kill"] == 1);
  CHECK(cgroups[0]["events"]["oom_kill"] == 0);

  const auto& events = report["events"];
  REQUIRE(events.size() == 2);
  CHECK(events[0]["kind"] == "oom_kill");
  CHECK(events[0]["path"] == "ebb.slice/web.service");
  CHECK(events[1]["path"] == "");
  CHECK(events[1]["value_ns"] == 6'000'000);
}

TEST_CASE_METHOD(CommandFixture, "ebbd probe prints a table with the active probes and one row per cgroup") {
  REQUIRE(run_probe_command(options, probes, out, err) == 0);
  const auto text = out.str();
  CHECK(text.rfind("probes active: sched_switch; inactive: oom_kill: this kernel has no kprobes\n", 0) == 0);
  CHECK(text.find("CGROUP ") != std::string::npos);
  CHECK(text.find("ebb.slice/batch.service") != std::string::npos);
  CHECK(text.find("ebb.slice/web.service") != std::string::npos);
  CHECK(text.find("system.slice") == std::string::npos);
  CHECK(probes.tracked().size() == 2);
}

TEST_CASE_METHOD(CommandFixture, "ebbd probe rejects a bad selector before touching the probes") {
  options.selectors = {"/ebb.slice/*"};
  CHECK(run_probe_command(options, probes, out, err) == 2);
  CHECK(err.str().find("relative to the cgroup root") != std::string::npos);
  CHECK(probes.tracked().empty());
  CHECK(out.str().empty());
}

TEST_CASE_METHOD(CommandFixture, "ebbd probe fails when no cgroup matches") {
  options.selectors = {"kubepods.slice/**"};
  CHECK(run_probe_command(options, probes, out, err) == 1);
  CHECK(err.str().find("selectors match none") != std::string::npos);
}

TEST_CASE("the probe table aligns numbers right under their headers") {
  ProbeReport report;
  report.probes = {{"sched_switch", true, ""}};
  report.duration = 2s;
  ProbedCgroup cg;
  cg.path = "a";
  cg.counters.cpu_ns = 1'234'567'890;
  cg.counters.runq_latency.buckets[20] = 1;
  cg.counters.involuntary_switches = 42;
  cg.counters.reclaim_stall_ns = 2'500'000;
  cg.events = {1, 2, 0, 0};
  report.cgroups = {cg};
  CHECK(render_table(report) ==
        "probes active: sched_switch\n"
        "over 2.0 s\n"
        "CGROUP  CPU_MS  RUNQ_P50_US  RUNQ_P99_US  INVOL_SWITCHES  RECLAIM_STALL_MS  OOM_KILLS  THROTTLED  EVENTS\n"
        "a       1234.6         2097         2097              42               2.5          0          0       3\n");
}
