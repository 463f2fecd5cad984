#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "sim/traces.h"

using namespace ebb::sim;

namespace {
constexpr const char* kHeader = "time_s,container,cpu_cores,memory_bytes\n";

std::string csv_error(const std::string& text) {
  auto r = parse_trace_csv(text, "t.csv");
  REQUIRE_FALSE(r);
  return r.error().message;
}
}  // namespace

TEST_CASE("CSV traces: containers in order of appearance, comments and blank lines skipped") {
  auto r = parse_trace_csv(std::string("# a comment\n\n") + kHeader +
                               "0,web,0.5,1000\n0,db,1.5,2000\n1.5,web,0.25,1100\n",
                           "t.csv");
  REQUIRE(r);
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].first == "web");
  CHECK((*r)[0].second.times_s == std::vector<double>{0, 1.5});
  CHECK((*r)[0].second.cpu_cores == std::vector<double>{0.5, 0.25});
  CHECK((*r)[0].second.memory_bytes == std::vector<std::uint64_t>{1000, 1100});
  CHECK((*r)[1].first == "db");
}

TEST_CASE("CSV trace errors name the file and the line") {
  using Catch::Matchers::Contains;
  CHECK_THAT(csv_error("time,container\n"), Contains("t.csv:1:") && Contains("header"));
  CHECK_THAT(csv_error(std::string(kHeader) + "0,web,0.5\n"), Contains("t.csv:2:") && Contains("4 fields"));
  CHECK_THAT(csv_error(std::string(kHeader) + "0,web,0.5,1\nx,web,1,1\n"), Contains("t.csv:3:") && Contains("time_s"));
  CHECK_THAT(csv_error(std::string(kHeader) + "0,web,-1,1\n"), Contains("t.csv:2:") && Contains("cpu_cores"));
  CHECK_THAT(csv_error(std::string(kHeader) + "0,web,1,1.5\n"), Contains("t.csv:2:") && Contains("memory_bytes"));
  CHECK_THAT(csv_error(std::string(kHeader) + "0,,1,1\n"), Contains("empty container"));
  CHECK_THAT(csv_error(std::string(kHeader) + "# c\n1,web,1,1\n1,web,1,1\n"),
             Contains("t.csv:4:") && Contains("does not increase"));
  CHECK_THAT(csv_error(kHeader), Contains("no samples"));
  CHECK_THAT(csv_error(""), Contains("no header"));
}

TEST_CASE("GCD series: percentages scaled to cores and bytes, one row per 5 minutes") {
  GcdScale scale;
  scale.cpu_cores = 8;
  scale.memory_bytes = 1000;
  auto s = parse_gcd_series("50 10\n25.5\t20\n", "vm_1", scale);
  REQUIRE(s);
  CHECK(s->times_s == std::vector<double>{0, 300});
  CHECK(s->cpu_cores == std::vector<double>{4, 2.04});
  CHECK(s->memory_bytes == std::vector<std::uint64_t>{100, 200});
  auto bad = parse_gcd_series("50 10\n50\n", "vm_1", scale);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Matchers::Contains("vm_1:2:"));
}

// Found by fuzzing (tests/fuzz/corpus/trace_csv/gcd-memory-out-of-range.txt): converting
// the byte count was undefined behaviour.
TEST_CASE("GCD series: a memory percentage whose bytes do not fit 64 bits is an error") {
  for (const char* row : {"12.5 1e300\n", "12.5 nan\n", "inf 10\n"}) {
    auto bad = parse_gcd_series(row, "vm_1", GcdScale{});
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Matchers::Contains("vm_1:1:"));
  }
}

TEST_CASE("GCD archives are read in-process from the .tar.gz") {
  const auto dir = std::filesystem::temp_directory_path() / ("ebb-sim-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "GCD_VMs.tar.gz").string();
  auto member = [](const std::string& name, const std::string& body) {
    std::string header(512, '\0');
    header.replace(0, name.size(), name);
    char size[12];
    std::snprintf(size, sizeof size, "%011o", static_cast<unsigned>(body.size()));
    header.replace(124, 11, size);
    header[156] = '0';
    return header + body + std::string((512 - body.size() % 512) % 512, '\0');
  };
  const std::string tar = member("GCD_VMs/vm_2_1", "10 20\n30 40\n") + member("GCD_VMs/vm_1_1", "50 60\n") +
                          std::string(1024, '\0');
  gzFile gz = gzopen(path.c_str(), "wb");
  gzwrite(gz, tar.data(), static_cast<unsigned>(tar.size()));
  gzclose(gz);

  auto series = read_gcd(path, GcdScale{});
  std::filesystem::remove_all(dir);
  REQUIRE(series);
  REQUIRE(series->size() == 2);
  CHECK((*series)[0].first == "vm_1_1");  // sorted by name
  CHECK((*series)[0].second.cpu_cores == std::vector<double>{4});
  CHECK((*series)[1].second.times_s.size() == 2);
  auto missing = read_gcd("/nonexistent/GCD_VMs.tar.gz", GcdScale{});
  CHECK_FALSE(missing);
}
