#include <catch2/catch.hpp>

#include "daemon/config/config.h"

// The shipped example must parse and say exactly what the built-in defaults are, so the
// documentation cannot drift from the code.
TEST_CASE("scripts/ebbd.toml parses and matches the built-in defaults") {
  auto shipped = ebb::config::load_config(EBB_SOURCE_DIR "/scripts/ebbd.toml");
  REQUIRE(shipped.ok());
  auto builtin = ebb::config::parse_config("", "empty");
  REQUIRE(builtin.ok());
  CHECK(shipped->cgroup_root == builtin->cgroup_root);
  CHECK(shipped->state_dir == builtin->state_dir);
  CHECK(shipped->tick == builtin->tick);
  CHECK(shipped->dry_run == builtin->dry_run);
  CHECK(shipped->restore_on_exit == builtin->restore_on_exit);
  CHECK(shipped->policy == builtin->policy);
  CHECK(shipped->select == builtin->select);
  CHECK(shipped->socket == builtin->socket);
  CHECK(shipped->event_min_interval == builtin->event_min_interval);
  CHECK(shipped->probes == builtin->probes);
  CHECK(shipped->react_to_events == builtin->react_to_events);
  auto a = ebb::config::resolve_settings(*shipped, "ebb.slice/x");
  auto b = ebb::config::resolve_settings(*builtin, "ebb.slice/x");
  CHECK(a.mode == b.mode);
  CHECK(a.bounds.cpu_min_cores == b.bounds.cpu_min_cores);
  CHECK(a.bounds.memory_min_bytes == b.bounds.memory_min_bytes);
  CHECK(a.objective.throttled_fraction == b.objective.throttled_fraction);
  CHECK(a.priority == b.priority);
  CHECK(a.weight == b.weight);
}
