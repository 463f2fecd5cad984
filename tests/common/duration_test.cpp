#include <catch2/catch.hpp>

#include "daemon/common/duration.h"

using namespace std::chrono_literals;

TEST_CASE("durations parse with their units") {
  CHECK(*ebb::parse_duration("200ms") == 200ms);
  CHECK(*ebb::parse_duration("1.5s") == 1500ms);
  CHECK(*ebb::parse_duration("2m") == 120s);
  CHECK(*ebb::parse_duration("50us") == 50us);
}

TEST_CASE("bad durations are errors that quote the input") {
  for (const char* bad : {"", "ms", "10", "10 parsecs", "1.2.3s", "-5s"}) {
    auto r = ebb::parse_duration(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("duration") != std::string::npos);
  }
}

TEST_CASE("sizes parse with binary units") {
  CHECK(*ebb::parse_bytes("100") == 100u);
  CHECK(*ebb::parse_bytes("512M") == 512ull << 20);
  CHECK(*ebb::parse_bytes("1GiB") == 1ull << 30);
  CHECK_FALSE(ebb::parse_bytes("12X").ok());
  CHECK(ebb::format_bytes(300ull << 20) == "300.0M");
}

// Found by fuzzing the config (tests/fuzz/corpus/config/huge-duration.toml): converting these
// to integers was undefined behaviour.
TEST_CASE("durations and sizes too large for 64 bits are errors") {
  CHECK_FALSE(ebb::parse_duration("1e300s").ok());
  CHECK_FALSE(ebb::parse_duration("300000000000h").ok());
  CHECK_FALSE(ebb::parse_bytes("1e300T").ok());
  CHECK_FALSE(ebb::parse_bytes("20000000T").ok());
  CHECK(*ebb::parse_bytes("16T") == 16ull << 40);
}
