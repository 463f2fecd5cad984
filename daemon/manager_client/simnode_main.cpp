// ebb-simnode: one simulated node (run_simulated_node) from the command line, with the flags
// ebbd --simulate takes, for tests that need nodes in other network namespaces.
#include <CLI/CLI.hpp>

#include "daemon/common/duration.h"
#include "daemon/manager_client/simulated_node.h"

int main(int argc, char** argv) {
  CLI::App app{"ebb-simnode: a trace-driven node linked to ebb-manager"};
  ebb::manager_client::SimulatedNodeOptions o;
  std::string cert, key, ca, status_file, memory = "64G";
  double duration_s = 0;
  app.add_option("trace_dir", o.trace_dir, "directory of ebb-sim trace CSVs")->required();
  app.add_option("--manager", o.link.manager, "manager address host:port")->required();
  app.add_option("--node-id", o.link.node_id)->required();
  app.add_option("--cpus", o.link.cpu_cores, "node capacity in cores")->required();
  app.add_option("--memory", memory, "node memory, e.g. 64G");
  app.add_option("--tls-cert", cert);
  app.add_option("--tls-key", key);
  app.add_option("--tls-ca", ca);
  app.add_flag("--plaintext", o.link.transport.plaintext, "no TLS (loopback only)");
  app.add_option("--time-scale", o.time_scale, "trace seconds per second");
  app.add_option("--status-file", status_file, "JSON status, rewritten every tick");
  app.add_option("--duration", duration_s, "seconds to run (0: until a signal)");
  CLI11_PARSE(app, argc, argv);
  auto bytes = ebb::parse_bytes(memory);
  if (!bytes) {
    std::fprintf(stderr, "ebb-simnode: --memory: %s\n", bytes.error().message.c_str());
    return 2;
  }
  o.link.memory_bytes = *bytes;
  o.link.transport.tls = {cert, key, ca};
  if (!status_file.empty()) o.status_file = status_file;
  o.duration = std::chrono::milliseconds(static_cast<long>(duration_s * 1000));
  return ebb::manager_client::run_simulated_node(o);
}
