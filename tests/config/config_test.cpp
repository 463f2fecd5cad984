#include <catch2/catch.hpp>

#include "daemon/config/config.h"

using namespace ebb::config;
using namespace std::chrono_literals;

namespace {
std::string error_of(std::string_view text) {
  auto r = parse_config(text, "ebbd.toml");
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}
}  // namespace

TEST_CASE("an empty config gives the documented defaults") {
  auto c = parse_config("", "ebbd.toml");
  REQUIRE(c.ok());
  CHECK(c->cgroup_root == "/sys/fs/cgroup");
  CHECK(c->state_dir == "/var/lib/ebb");
  CHECK(c->tick == 200ms);
  CHECK_FALSE(c->dry_run);
  CHECK(c->restore_on_exit);
  CHECK(c->select == std::vector<std::string>{"ebb.slice/*"});
  CHECK(c->policy == PolicyKind::learner);
}

// Found by fuzzing (tests/fuzz/corpus/config/select-without-patterns.toml): this crashed.
TEST_CASE("a [select] table without patterns keeps the default selection") {
  auto c = parse_config("[select]\n", "ebbd.toml");
  REQUIRE(c.ok());
  CHECK(c->select == std::vector<std::string>{"ebb.slice/*"});
}

TEST_CASE("a full config is read into the structs") {
  auto c = parse_config(R"(
[daemon]
cgroup_root = "/tmp/cg"
state_dir = "/tmp/state"
tick = "100ms"
dry_run = true
restore_on_exit = false
log_level = "debug"
policy = "heuristic"
node_cpus = 8
node_memory = "16G"

[select]
patterns = ["system.slice/docker-*.scope", "kubepods.slice/**/cri-containerd-*.scope"]

[defaults]
cpu_min = 0.1
memory_min = "64M"
throttle_target = 0.02

[[container]]
select = "system.slice/docker-*.scope"
priority = "guaranteed"
cpu_min = 1.5
mode = "recommend"

[api]
socket = "/tmp/ebbd.sock"
metrics_listen = "127.0.0.1:9464"
)",
                        "ebbd.toml");
  REQUIRE(c.ok());
  CHECK(c->tick == 100ms);
  CHECK(c->dry_run);
  CHECK_FALSE(c->restore_on_exit);
  CHECK(c->policy == PolicyKind::heuristic);
  CHECK(c->node_cpu_cores == 8);
  CHECK(c->node_memory_bytes == 16ull << 30);
  CHECK(c->select.size() == 2);
  REQUIRE(c->overrides.size() == 1);
  CHECK(*c->metrics_listen == "127.0.0.1:9464");

  auto docker = resolve_settings(*c, "system.slice/docker-abc.scope");
  CHECK(docker.priority == ebb::policy::PriorityClass::guaranteed);
  CHECK(docker.bounds.cpu_min_cores == 1.5);
  CHECK(docker.mode == Mode::recommend);
  CHECK(docker.bounds.memory_min_bytes == 64ull << 20);
  CHECK(docker.objective.throttled_fraction == 0.02);

  auto other = resolve_settings(*c, "kubepods.slice/x/cri-containerd-1.scope");
  CHECK(other.priority == ebb::policy::PriorityClass::burstable);
  CHECK(other.bounds.cpu_min_cores == 0.1);
  CHECK(other.mode == Mode::automatic);
}

TEST_CASE("API overrides win over the config file") {
  auto c = parse_config("[defaults]\ncpu_min = 0.2\n", "ebbd.toml");
  REQUIRE(c.ok());
  ContainerSettings api;
  api.cpu_min_cores = 0.7;
  api.mode = Mode::off;
  auto s = resolve_settings(*c, "ebb.slice/a", &api);
  CHECK(s.bounds.cpu_min_cores == 0.7);
  CHECK(s.mode == Mode::off);
}

TEST_CASE("config errors name the key and the line") {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"[daemon]\ntick = \"5ms\"\n", "ebbd.toml:2: daemon.tick must be between 50ms and 10s"},
      {"[daemon]\ntick = \"fast\"\n", "ebbd.toml:2: daemon.tick: invalid duration 'fast'"},
      {"[daemon]\n\nticks = \"1s\"\n", "ebbd.toml:3: unknown key 'daemon.ticks'"},
      {"[deamon]\n", "ebbd.toml:1: unknown key 'deamon'"},
      {"[daemon]\ndry_run = \"yes\"\n", "ebbd.toml:2: daemon.dry_run must be true or false"},
      {"[daemon]\npolicy = \"magic\"\n", "ebbd.toml:2: daemon.policy must be"},
      {"[defaults]\ncpu_min = -1\n", "ebbd.toml:2: defaults.cpu_min = -1 is out of range"},
      {"[defaults]\nmemory_max = \"12X\"\n", "ebbd.toml:2: defaults.memory_max: invalid size"},
      {"[defaults]\npriority = \"vip\"\n", "ebbd.toml:2: defaults.priority must be one of"},
      {"[select]\npatterns = [\"ok/*\", 3]\n", "ebbd.toml:2: select.patterns must contain only strings"},
      {"[select]\npatterns = [\"a/[b\"]\n", "ebbd.toml:2: select.patterns:"},
      {"[[container]]\ncpu_min = 1\n", "container[0].select is required"},
      {"[[container]]\nselect = \"a/*\"\ncpu_mn = 1\n", "ebbd.toml:3: unknown key 'container[0].cpu_mn'"},
      {"[defaults]\ncpu_min = 2\ncpu_max = 1\n", "defaults: cpu_min is above cpu_max"},
      {"[daemon\n", "ebbd.toml:1:"},
      {"[daemon]\nlog_level = \"loud\"\n", "log level 'loud' must be one of"},
  };
  for (const auto& c : cases) {
    INFO(c.text);
    CHECK_THAT(error_of(c.text), Catch::Contains(c.expected));
  }
}

TEST_CASE("a missing config file is an error naming the file") {
  auto r = load_config("/nonexistent/ebbd.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().path == "/nonexistent/ebbd.toml");
  CHECK(r.error().errno_value == ENOENT);
}
