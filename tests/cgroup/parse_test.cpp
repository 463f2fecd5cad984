#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "daemon/cgroup/cgroup.h"

using namespace ebb::cgroup;

TEST_CASE("parse_cpu_stat reads the known keys and skips keys of newer kernels") {
  const auto stat = parse_cpu_stat(
      "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\ncore_sched.force_idle_usec 0\nnr_periods 40\n"
      "nr_throttled 7\nthrottled_usec 12345\nnr_bursts 0\nburst_usec 0\n");
  REQUIRE(stat.ok());
  CHECK(stat->usage_usec == 1500);
  CHECK(stat->user_usec == 1000);
  CHECK(stat->system_usec == 500);
  CHECK(stat->nr_periods == 40);
  CHECK(stat->nr_throttled == 7);
  CHECK(stat->throttled_usec == 12345);
}

TEST_CASE("parse_cpu_stat without the cpu controller has only the core keys") {
  const auto stat = parse_cpu_stat("usage_usec 10\nuser_usec 6\nsystem_usec 4\n");
  REQUIRE(stat.ok());
  CHECK(stat->usage_usec == 10);
  CHECK(stat->nr_periods == 0);
}

TEST_CASE("parse_cpu_max reads a quota or max, and the period") {
  CHECK(parse_cpu_max("max 100000\n").value() == CpuMax{std::nullopt, 100000});
  CHECK(parse_cpu_max("50000 100000\n").value() == CpuMax{50000, 100000});
  CHECK(parse_cpu_max("1000 20000").value() == CpuMax{1000, 20000});
}

TEST_CASE("parse_cpu_weight and parse_memory_value read single values") {
  CHECK(parse_cpu_weight("100\n").value() == 100);
  CHECK(parse_cpu_weight("10000\n").value() == 10000);
  CHECK(parse_memory_value("max\n").value() == kUnlimited);
  CHECK(parse_memory_value("104857600\n").value() == 104857600);
  CHECK(parse_memory_value("0\n").value() == 0);
}

TEST_CASE("parse_memory_events reads all counters and skips unknown ones") {
  const auto events = parse_memory_events("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\nsock_throttled 9\n");
  REQUIRE(events.ok());
  CHECK(events->low == 1);
  CHECK(events->high == 2);
  CHECK(events->max == 3);
  CHECK(events->oom == 4);
  CHECK(events->oom_kill == 5);
  CHECK(events->oom_group_kill == 6);
}

TEST_CASE("parse_memory_stat reads the working-set fields and skips the rest") {
  const auto stat = parse_memory_stat(
      "anon 1000\nfile 2000\nkernel 300\nkernel_stack 16384\nshmem 40\nactive_anon 900\ninactive_anon 100\n"
      "active_file 1500\ninactive_file 500\nworkingset_refault_anon 7\nworkingset_refault_file 8\n"
      "pgscan 11\npgsteal 12\nthp_fault_alloc 0\n");
  REQUIRE(stat.ok());
  CHECK(stat->anon == 1000);
  CHECK(stat->file == 2000);
  CHECK(stat->kernel == 300);
  CHECK(stat->shmem == 40);
  CHECK(stat->active_anon == 900);
  CHECK(stat->inactive_anon == 100);
  CHECK(stat->active_file == 1500);
  CHECK(stat->inactive_file == 500);
  CHECK(stat->workingset_refault_anon == 7);
  CHECK(stat->workingset_refault_file == 8);
  CHECK(stat->pgscan == 11);
  CHECK(stat->pgsteal == 12);
  CHECK(stat->working_set() == 2500);
}

TEST_CASE("parse_pressure reads some and the optional full line") {
  const auto both = parse_pressure(
      "some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.50 avg60=0.10 avg300=0.01 total=654\n");
  REQUIRE(both.ok());
  CHECK(both->some.avg10 == Approx(1.5));
  CHECK(both->some.avg60 == Approx(0.25));
  CHECK(both->some.avg300 == Approx(0.0));
  CHECK(both->some.total_usec == 123456);
  REQUIRE(both->full);
  CHECK(both->full->avg10 == Approx(0.5));
  CHECK(both->full->avg300 == Approx(0.01));
  CHECK(both->full->total_usec == 654);

  const auto some_only = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
  REQUIRE(some_only.ok());
  CHECK_FALSE(some_only->full);
}

TEST_CASE("parse_pressure skips unknown keys and line kinds of the same shape") {
  const auto p = parse_pressure(
      "some avg10=2.00 avg60=1.00 avg300=0.50 total=10 avg5=3.00\nnewkind avg10=9.00 total=1\n");
  REQUIRE(p.ok());
  CHECK(p->some.avg10 == Approx(2.0));
  CHECK(p->some.total_usec == 10);
}

TEST_CASE("parse_controllers splits the controller list") {
  CHECK(parse_controllers("cpu io memory pids\n") == std::set<std::string>{"cpu", "io", "memory", "pids"});
  CHECK(parse_controllers("\n").empty());
}

TEST_CASE("formatters write what the kernel expects") {
  CHECK(format_cpu_max(CpuMax{std::nullopt, 100000}) == "max 100000");
  CHECK(format_cpu_max(CpuMax{25000, 50000}) == "25000 50000");
  CHECK(format_memory_value(kUnlimited) == "max");
  CHECK(format_memory_value(1 << 20) == "1048576");
  CHECK(parse_cpu_max(format_cpu_max(CpuMax{123, 4567})).value() == CpuMax{123, 4567});
}

namespace {

struct Garbage {
  const char* parser;
  std::function<ebb::Error(std::string_view)> parse;  // fails the test if the text parses
  std::string text;
  std::string expected_in_message;
};

template <typename T>
std::function<ebb::Error(std::string_view)> expect_failure(ebb::Result<T> (*parse)(std::string_view)) {
  return [parse](std::string_view text) {
    auto result = parse(text);
    REQUIRE_FALSE(result.ok());
    return result.error();
  };
}

}  // namespace

TEST_CASE("parsers reject garbage and name the bad line") {
  const std::vector<Garbage> table{
      {"cpu.stat", expect_failure(parse_cpu_stat), "usage_usec 10\nnr_periods ten\n", "line 2: expected 'key unsigned-integer': 'nr_periods ten'"},
      {"cpu.stat", expect_failure(parse_cpu_stat), "usage_usec 10 20\n", "line 1"},
      {"cpu.stat", expect_failure(parse_cpu_stat), "usage_usec -5\n", "'usage_usec -5'"},
      {"cpu.stat", expect_failure(parse_cpu_stat), "", "empty"},
      {"cpu.stat", expect_failure(parse_cpu_stat), "\n\n", "empty"},
      {"cpu.max", expect_failure(parse_cpu_max), "max\n", "expected '$MAX $PERIOD': 'max'"},
      {"cpu.max", expect_failure(parse_cpu_max), "fifty 100000\n", "quota"},
      {"cpu.max", expect_failure(parse_cpu_max), "50000 0\n", "'50000 0'"},
      {"cpu.max", expect_failure(parse_cpu_max), "50000 100000 7\n", "line 1"},
      {"cpu.weight", expect_failure(parse_cpu_weight), "0\n", "1..10000"},
      {"cpu.weight", expect_failure(parse_cpu_weight), "10001\n", "1..10000"},
      {"cpu.weight", expect_failure(parse_cpu_weight), "heavy\n", "'heavy'"},
      {"cpu.weight", expect_failure(parse_cpu_weight), "100 200\n", "single value"},
      {"memory.max", expect_failure(parse_memory_value), "unlimited\n", "expected 'max' or a byte count: 'unlimited'"},
      {"memory.max", expect_failure(parse_memory_value), "1.5G\n", "'1.5G'"},
      {"memory.max", expect_failure(parse_memory_value), "", "empty"},
      {"memory.events", expect_failure(parse_memory_events), "low 0\noom_kill\n", "line 2"},
      {"memory.stat", expect_failure(parse_memory_stat), "anon 1\n<html>\n", "'<html>'"},
      {"pressure", expect_failure(parse_pressure), "some avg10=0.00 avg60=0.00 total=0\n", "avg300"},
      {"pressure", expect_failure(parse_pressure), "some avg10=x avg60=0.00 avg300=0.00 total=0\n", "avg10 is not a number"},
      {"pressure", expect_failure(parse_pressure), "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n", "total"},
      {"pressure", expect_failure(parse_pressure), "some 0.00 0.00 0.00 0\n", "expected key=value"},
      {"pressure", expect_failure(parse_pressure), "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", "no 'some' line"},
      {"pressure", expect_failure(parse_pressure), "", "empty"},
  };
  for (const auto& row : table) {
    CAPTURE(row.parser, row.text);
    const auto error = row.parse(row.text);
    CHECK_THAT(error.message, Catch::Contains(row.expected_in_message));
  }
}
