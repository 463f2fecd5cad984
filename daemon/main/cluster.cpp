#include "daemon/main/cluster.h"

#include <unistd.h>

#include "daemon/common/duration.h"
#include "daemon/manager_client/simulated_node.h"

namespace ebb::cluster {

void add_flags(CLI::App& app, Flags& flags) {
  app.add_option("--manager", flags.manager, "ebb-manager address HOST:PORT (default: local control only)");
  app.add_option("--node-id", flags.node_id, "this node's id at the manager (default: the host name)");
  app.add_option("--tls-cert", flags.tls_cert, "client certificate for the manager (mutual TLS)");
  app.add_option("--tls-key", flags.tls_key, "its private key");
  app.add_option("--tls-ca", flags.tls_ca, "CA that signed the manager's certificate");
  app.add_flag("--manager-plaintext", flags.plaintext, "no TLS to the manager (development, loopback only)");
  app.add_option("--simulate", flags.simulate, "run a simulated node whose containers play the traces in DIR (CSV)");
  app.add_option("--simulate-cpus", flags.simulate_cpus, "CPU capacity of the simulated node (required with --simulate)");
  app.add_option("--simulate-memory", flags.simulate_memory, "memory of the simulated node (default 16G)");
}

namespace {

Result<manager_client::ManagerLinkOptions> link_options(const Flags& flags) {
  manager_client::ManagerLinkOptions o;
  o.manager = flags.manager;
  o.node_id = flags.node_id;
  if (o.node_id.empty()) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) return system_error("cannot read the host name for --node-id", "", errno);
    o.node_id = host;
  }
  o.transport.plaintext = flags.plaintext;
  o.transport.tls = {flags.tls_cert, flags.tls_key, flags.tls_ca};
  if (!flags.plaintext && (flags.tls_cert.empty() || flags.tls_key.empty() || flags.tls_ca.empty())) {
    return Error{"--manager needs --tls-cert, --tls-key and --tls-ca (or --manager-plaintext on loopback)"};
  }
  return o;
}

}  // namespace

Result<std::unique_ptr<manager_client::ManagerLink>> connect(const Flags& flags, boost::asio::io_context& io,
                                                            control::Engine& engine) {
  if (flags.manager.empty()) return std::unique_ptr<manager_client::ManagerLink>();
  auto options = link_options(flags);
  if (!options) return options.error();
  auto link = std::make_unique<manager_client::ManagerLink>(io, engine, std::move(*options));
  link->start();
  return link;
}

int run_simulated(const Flags& flags) {
  auto options = link_options(flags);
  auto memory = parse_bytes(flags.simulate_memory);
  if (!options || !memory || flags.simulate_cpus <= 0 || flags.manager.empty()) {
    const std::string why = flags.manager.empty() ? "--simulate needs --manager"
                            : !options            ? options.error().to_string()
                            : !memory             ? "--simulate-memory: " + memory.error().message
                                                  : "--simulate needs --simulate-cpus > 0";
    std::fprintf(stderr, "ebbd: %s\n", why.c_str());
    return 2;
  }
  manager_client::SimulatedNodeOptions s;
  s.trace_dir = flags.simulate;
  s.link = std::move(*options);
  s.link.cpu_cores = flags.simulate_cpus;
  s.link.memory_bytes = *memory;
  return manager_client::run_simulated_node(s);
}

}  // namespace ebb::cluster
