#pragma once
// `ebbd probe`: attach the probes to the selected cgroups for a while, then print what they saw
// per cgroup (named by path) as a table or JSON, and which probes were active.
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/probes/probes.h"

namespace ebb::probes {

struct ProbeCommandOptions {
  std::filesystem::path cgroup_root;   // --cgroup-root (main picks the default)
  std::vector<std::string> selectors;  // --select globs relative to the root (and the config's)
  std::chrono::nanoseconds duration = std::chrono::seconds(5);
  bool json = false;                   // -o json
  Options probe_options;
};

// What one run saw. Pure data, rendered by render_table() and to_json().
struct ProbedCgroup {
  std::string path;  // relative to the root
  std::string name;  // human name
  std::uint64_t id = 0;
  CgroupCounters counters;
  std::array<std::uint64_t, 4> events{};  // by Event::Kind
};
struct ReceivedEvent {
  Event event;
  std::string path;                 // empty if not one of the probed cgroups
  std::int64_t delivery_ns = 0;     // from the kernel's timestamp to user space reading it
};
struct ProbeReport {
  std::vector<ProbeStatus> probes;
  std::chrono::nanoseconds duration{};
  std::vector<ProbedCgroup> cgroups;
  std::vector<ReceivedEvent> events;  // the first kMaxListedEvents
  static constexpr std::size_t kMaxListedEvents = 1000;
};

std::string render_table(const ProbeReport& report);
nlohmann::json to_json(const ProbeReport& report);

// Opens the eBPF probes and runs the command; the process exit status (0 ok, 1 runtime error,
// 2 bad selector). Results go to `out`, errors to `err`.
int run_probe_command(const ProbeCommandOptions& options, std::ostream& out, std::ostream& err);
// The same over probes the caller opened (tests pass a fake).
int run_probe_command(const ProbeCommandOptions& options, ProbeSource& probes, std::ostream& out, std::ostream& err);

}  // namespace ebb::probes
