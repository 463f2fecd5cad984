// A stand-in for `ebbd probe` that the benchmark and manual checks can run on any build:
//   ebb-probe-driver --cgroup-root DIR --select GLOB... [--duration 5s] [-o json]
#include <CLI/CLI.hpp>
#include <iostream>

#include "daemon/common/duration.h"
#include "daemon/probes/probe_command.h"

int main(int argc, char** argv) {
  CLI::App app{"attach the eBPF probes to the selected cgroups and print what they saw", "ebb-probe-driver"};
  ebb::probes::ProbeCommandOptions options;
  std::string root, duration = "5s", format = "table";
  app.add_option("--cgroup-root", root, "cgroup v2 root")->required();
  app.add_option("--select", options.selectors, "glob relative to the root; repeatable")->required();
  app.add_option("--duration", duration, "how long to watch");
  app.add_option("-o", format, "table or json")->check(CLI::IsMember({"table", "json"}));
  CLI11_PARSE(app, argc, argv);

  const auto parsed = ebb::parse_duration(duration);
  if (!parsed) {
    std::cerr << "ebb-probe-driver: --duration: " << parsed.error().to_string() << "\n";
    return 2;
  }
  options.cgroup_root = root;
  options.duration = *parsed;
  options.json = format == "json";
  return ebb::probes::run_probe_command(options, std::cout, std::cerr);
}
