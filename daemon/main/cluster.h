#pragma once
// ebbd's side of ebb-manager: the flags that join a node to a manager, and `--simulate`, which
// runs a node of trace-played containers (ebb-sim's models) instead of managing real cgroups.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "daemon/common/error.h"
#include "daemon/control/engine.h"
#include "daemon/manager_client/manager_link.h"

namespace ebb::cluster {

struct Flags {
  std::string manager;    // host:port; empty: local control only
  std::string node_id;
  std::string tls_cert, tls_key, tls_ca;
  bool plaintext = false; // development only, loopback only
  std::string simulate;   // trace directory
  double simulate_cpus = 0;
  std::string simulate_memory = "16G";
};

void add_flags(CLI::App& app, Flags& flags);

// The link, when --manager is given; nullptr otherwise. Errors name the missing flag.
Result<std::unique_ptr<manager_client::ManagerLink>> connect(const Flags& flags, boost::asio::io_context& io,
                                                            control::Engine& engine);

// --simulate TRACE_DIR: exit status of the simulated node.
int run_simulated(const Flags& flags);

}  // namespace ebb::cluster
