#include "manager/config/config.h"

#include <catch2/catch.hpp>

using namespace ebb::manager;
using namespace std::chrono_literals;

TEST_CASE("manager config: values, defaults and TLS") {
  auto c = parse_manager_config(R"(
[manager]
listen = "10.0.0.1:7443"
lease = "4s"
state_file = "/var/lib/ebb/m.json"
[tls]
cert = "m.pem"
key = "m.key"
ca = "ca.pem"
[allocation]
reserve_cpus = 1.5
reserve_memory = "1G"
)",
                                "m.toml");
  REQUIRE(c.ok());
  CHECK(c->listen == "10.0.0.1:7443");
  CHECK(c->options.lease == 4s);
  CHECK(c->options.round_interval == 1s);
  CHECK(c->options.allocation.reserve_cpu_cores == 1.5);
  CHECK(c->options.allocation.reserve_memory_bytes == double(1ull << 30));
  CHECK(c->transport.tls.ca == "ca.pem");
  CHECK_FALSE(c->transport.plaintext);
}

TEST_CASE("manager config: plaintext must be explicit and loopback") {
  CHECK(parse_manager_config("[manager]\nlisten = \"127.0.0.1:7070\"\nplaintext_loopback = true\n", "a").ok());
  auto remote = parse_manager_config("[manager]\nlisten = \"0.0.0.0:7070\"\nplaintext_loopback = true\n", "b");
  REQUIRE_FALSE(remote.ok());
  CHECK(remote.error().message.find("not a loopback") != std::string::npos);
  // Neither TLS nor an explicit plaintext: refused, even on loopback.
  CHECK_FALSE(parse_manager_config("[manager]\nlisten = \"127.0.0.1:7070\"\n", "c").ok());
}

TEST_CASE("manager config: unknown keys and bad values name the line") {
  auto unknown = parse_manager_config("[manager]\nplaintext_loopback = true\nleese = \"4s\"\n", "d.toml");
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().message == "d.toml:3: unknown key manager.leese");
  auto bad = parse_manager_config("[manager]\nplaintext_loopback = true\nlease = \"soon\"\n", "e.toml");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.rfind("e.toml:3: lease", 0) == 0);
  auto range = parse_manager_config("[allocation]\nhysteresis_fraction = 2\n", "f");
  REQUIRE_FALSE(range.ok());
  CHECK(range.error().message.find("f:2: hysteresis_fraction") == 0);
}

TEST_CASE("cap schedule: the latest change not after now holds, wrapping at midnight") {
  auto s = parse_cap_schedule("# carbon\n18:00 40\n06:30 0\n12:00 80  # noon\n", "cap.txt");
  REQUIRE(s.ok());
  REQUIRE(s->size() == 3);
  CHECK(cap_at(*s, 5h) == 40.0);          // yesterday's 18:00 entry
  CHECK(cap_at(*s, 7h) == std::nullopt);  // 06:30: no cap
  CHECK(cap_at(*s, 12h) == 80.0);
  CHECK(cap_at(*s, 23h) == 40.0);
  CHECK(cap_at({}, 1h) == std::nullopt);
  CHECK_FALSE(parse_cap_schedule("25:00 4\n", "x").ok());
  CHECK_FALSE(parse_cap_schedule("10:00\n", "x").ok());
  CHECK_FALSE(parse_cap_schedule("10:00 -1\n", "x").ok());
}
