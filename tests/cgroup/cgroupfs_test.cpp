#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include "daemon/cgroup/cgroup.h"
#include "tests/support/fake_cgroup_tree.h"

using namespace ebb::cgroup;
using ebb::testing::FakeCgroupTree;

namespace {

constexpr const char* kPressure = "some avg10=1.25 avg60=0.00 avg300=0.00 total=42\n";

// One row per file of a Snapshot: valid content, the field it fills (nullopt when empty,
// else whether the value is the expected one), and content that must be rejected.
struct SnapshotFile {
  std::string file;
  std::string good;
  std::function<std::optional<bool>(const Snapshot&)> parsed_as_expected;
  std::string malformed;
  std::string bad_line;  // the line of `malformed` the error must quote
};

template <typename T, typename Check>
std::function<std::optional<bool>(const Snapshot&)> field(std::optional<T> Snapshot::*member, Check check) {
  return [member, check](const Snapshot& s) -> std::optional<bool> {
    if (!(s.*member)) return std::nullopt;
    return check(*(s.*member));
  };
}

const std::vector<SnapshotFile>& snapshot_files() {
  static const std::vector<SnapshotFile> table{
      {"cpu.stat", "usage_usec 77\nnr_periods 5\nnr_throttled 2\nthrottled_usec 9\n",
       field(&Snapshot::cpu_stat, [](const CpuStat& v) { return v.usage_usec == 77 && v.nr_throttled == 2 && v.throttled_usec == 9; }),
       "usage_usec lots\n", "usage_usec lots"},
      {"cpu.max", "25000 50000\n", field(&Snapshot::cpu_max, [](const CpuMax& v) { return v == CpuMax{25000, 50000}; }),
       "25000\n", "25000"},
      {"cpu.weight", "250\n", field(&Snapshot::cpu_weight, [](std::uint32_t v) { return v == 250; }), "-1\n", "-1"},
      {"cpu.pressure", kPressure,
       field(&Snapshot::cpu_pressure, [](const Pressure& v) { return v.some.total_usec == 42 && !v.full; }),
       "some avg10=1.25\n", "some avg10=1.25"},
      {"memory.current", "4096\n", field(&Snapshot::memory_current, [](std::uint64_t v) { return v == 4096; }), "4k\n", "4k"},
      {"memory.high", "max\n", field(&Snapshot::memory_high, [](std::uint64_t v) { return v == kUnlimited; }), "high\n", "high"},
      {"memory.max", "8192\n", field(&Snapshot::memory_max, [](std::uint64_t v) { return v == 8192; }), "8192 8192\n", "8192 8192"},
      {"memory.events", "oom 3\noom_kill 1\n",
       field(&Snapshot::memory_events, [](const MemoryEvents& v) { return v.oom == 3 && v.oom_kill == 1; }), "oom three\n", "oom three"},
      {"memory.events.local", "high 4\n",
       field(&Snapshot::memory_events_local, [](const MemoryEvents& v) { return v.high == 4; }), "high\n", "high"},
      {"memory.stat", "anon 10\nactive_file 5\n",
       field(&Snapshot::memory_stat, [](const MemoryStat& v) { return v.working_set() == 15; }), "anon 10\nfile\n", "file"},
      {"memory.pressure", kPressure,
       field(&Snapshot::memory_pressure, [](const Pressure& v) { return v.some.avg10 == 1.25; }), "some total=x\n", "some total=x"},
      {"io.pressure", kPressure, field(&Snapshot::io_pressure, [](const Pressure& v) { return v.some.total_usec == 42; }),
       "garbage\n", "garbage"},
  };
  return table;
}

std::uint64_t inode_of(const std::filesystem::path& dir) {
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE_METHOD(FakeCgroupTree, "snapshot reads every file of a cgroup") {
  const auto dir = add_cgroup("ebb.slice/web.service");
  for (const auto& row : snapshot_files()) write("ebb.slice/web.service/" + row.file, row.good);
  CgroupFs fs(root());
  const auto s = fs.snapshot("ebb.slice/web.service");
  REQUIRE(s.ok());
  CHECK(s->path == "ebb.slice/web.service");
  CHECK(s->id == inode_of(dir));
  for (const auto& row : snapshot_files()) {
    CAPTURE(row.file);
    CHECK(row.parsed_as_expected(*s) == std::optional<bool>(true));
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "snapshot leaves the field of a missing file empty") {
  CgroupFs fs(root());
  for (const auto& row : snapshot_files()) {
    CAPTURE(row.file);
    const std::string cgroup = "missing/" + row.file;
    add_cgroup(cgroup);
    std::filesystem::remove(root() / cgroup / row.file);
    const auto s = fs.snapshot(cgroup);
    REQUIRE(s.ok());
    CHECK_FALSE(row.parsed_as_expected(*s).has_value());
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "snapshot rejects malformed content naming file, cgroup and line") {
  CgroupFs fs(root());
  for (const auto& row : snapshot_files()) {
    CAPTURE(row.file);
    const std::string cgroup = "bad/" + row.file;
    add_cgroup(cgroup);
    write(cgroup + "/" + row.file, row.malformed);
    const auto s = fs.snapshot(cgroup);
    REQUIRE_FALSE(s.ok());
    CHECK_FALSE(s.error().vanished());
    CHECK(s.error().cgroup == cgroup);
    CHECK(s.error().path == (root() / cgroup / row.file).string());
    CHECK_THAT(s.error().message, Catch::Contains("malformed " + row.file));
    CHECK_THAT(s.error().message, Catch::Contains("'" + row.bad_line + "'"));
    CHECK_THAT(s.error().to_string(), Catch::Contains(cgroup));
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "snapshot of a cgroup without the memory controller has no memory fields") {
  add_cgroup("cpuonly");
  for (const char* file : {"memory.current", "memory.high", "memory.max", "memory.events", "memory.events.local", "memory.stat"})
    std::filesystem::remove(root() / "cpuonly" / file);
  CgroupFs fs(root());
  const auto s = fs.snapshot("cpuonly");
  REQUIRE(s.ok());
  CHECK(s->cpu_stat);
  CHECK(s->cpu_max);
  CHECK(s->memory_pressure);  // PSI files are not tied to the memory controller
  CHECK_FALSE(s->memory_current);
  CHECK_FALSE(s->memory_high);
  CHECK_FALSE(s->memory_max);
  CHECK_FALSE(s->memory_events);
  CHECK_FALSE(s->memory_events_local);
  CHECK_FALSE(s->memory_stat);
}

TEST_CASE_METHOD(FakeCgroupTree, "snapshot of a vanished cgroup is a vanished error") {
  add_cgroup("gone.scope");
  remove_cgroup("gone.scope");
  CgroupFs fs(root());
  const auto s = fs.snapshot("gone.scope");
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().vanished());
  CHECK(s.error().cgroup == "gone.scope");
}

TEST_CASE_METHOD(FakeCgroupTree, "cgroup_id is the directory's inode and changes when the cgroup is recreated") {
  const auto dir = add_cgroup("ebb.slice/app.scope");
  CgroupFs fs(root());
  const auto first = fs.cgroup_id("ebb.slice/app.scope");
  REQUIRE(first.ok());
  CHECK(*first == inode_of(dir));
  CHECK(fs.cgroup_id("/ebb.slice/app.scope").value() == *first);

  // An open descriptor keeps the removed directory's inode allocated, so a file system that
  // recycles inode numbers cannot hand the same one to the new directory (the kernel's cgroup
  // ids are never reused at all).
  const int old_dir = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(old_dir >= 0);
  remove_cgroup("ebb.slice/app.scope");
  add_cgroup("ebb.slice/app.scope");
  const auto second = fs.cgroup_id("ebb.slice/app.scope");
  ::close(old_dir);
  REQUIRE(second.ok());
  CHECK(*second == inode_of(dir));
  CHECK(*second != *first);

  remove_cgroup("ebb.slice/app.scope");
  const auto gone = fs.cgroup_id("ebb.slice/app.scope");
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error().vanished());
}

TEST_CASE_METHOD(FakeCgroupTree, "paths never leave the root") {
  CgroupFs fs(root());
  const auto escaped = fs.read_file("../..", "etc/passwd");
  REQUIRE_FALSE(escaped.ok());
  CHECK(escaped.error().errno_value == EINVAL);
  CHECK_FALSE(fs.write_memory_max("a/../../x", 1).ok());
}

namespace {

// The single-file readers: their file, good content and expected rendering, and garbage.
struct ReaderCase {
  std::string file;
  std::function<ebb::Result<std::string>(const CgroupFs&, std::string_view)> read;  // value rendered as text
  std::string good;
  std::string expected;
  std::string malformed;
};

template <typename T, typename Render>
std::function<ebb::Result<std::string>(const CgroupFs&, std::string_view)> rendered(
    ebb::Result<T> (CgroupFs::*reader)(std::string_view) const, Render render) {
  return [reader, render](const CgroupFs& fs, std::string_view cgroup) -> ebb::Result<std::string> {
    auto value = (fs.*reader)(cgroup);
    if (!value) return value.error();
    return render(*value);
  };
}

const std::vector<ReaderCase>& reader_cases() {
  static const auto as_number = [](auto v) { return std::to_string(v); };
  static const std::vector<ReaderCase> table{
      {"cpu.max", rendered(&CgroupFs::read_cpu_max, format_cpu_max), "max 100000\n", "max 100000", "max max\n"},
      {"cpu.weight", rendered(&CgroupFs::read_cpu_weight, as_number), "42\n", "42", "forty-two\n"},
      {"memory.high", rendered(&CgroupFs::read_memory_high, format_memory_value), "max\n", "max", "-1\n"},
      {"memory.max", rendered(&CgroupFs::read_memory_max, format_memory_value), "1048576\n", "1048576", "1M\n"},
      {"cgroup.subtree_control",
       rendered(&CgroupFs::subtree_control,
                [](const std::set<std::string>& s) {
                  std::string out;
                  for (const auto& c : s) out += c + ",";
                  return out;
                }),
       "memory cpu\n", "cpu,memory,", ""},
  };
  return table;
}

}  // namespace

TEST_CASE_METHOD(FakeCgroupTree, "single-file readers: success") {
  add_cgroup("r");
  CgroupFs fs(root());
  for (const auto& row : reader_cases()) {
    CAPTURE(row.file);
    write("r/" + row.file, row.good);
    const auto value = row.read(fs, "r");
    REQUIRE(value.ok());
    CHECK(*value == row.expected);
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "single-file readers: a missing file is not a vanished cgroup") {
  add_cgroup("r");
  CgroupFs fs(root());
  for (const auto& row : reader_cases()) {
    CAPTURE(row.file);
    std::filesystem::remove(root() / "r" / row.file);
    const auto value = row.read(fs, "r");
    REQUIRE_FALSE(value.ok());
    CHECK_FALSE(value.error().vanished());
    CHECK(value.error().errno_value == EOPNOTSUPP);
    CHECK(value.error().cgroup == "r");
    CHECK_THAT(value.error().message, Catch::Contains(row.file) && Catch::Contains("not enabled"));
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "single-file readers: malformed content names file and cgroup") {
  add_cgroup("r");
  CgroupFs fs(root());
  for (const auto& row : reader_cases()) {
    if (row.malformed.empty()) continue;  // any controller list parses
    CAPTURE(row.file);
    write("r/" + row.file, row.malformed);
    const auto value = row.read(fs, "r");
    REQUIRE_FALSE(value.ok());
    CHECK(value.error().cgroup == "r");
    CHECK(value.error().path == (root() / "r" / row.file).string());
    CHECK_THAT(value.error().message, Catch::Contains("malformed " + row.file));
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "single-file readers: a vanished cgroup") {
  CgroupFs fs(root());
  for (const auto& row : reader_cases()) {
    CAPTURE(row.file);
    const auto value = row.read(fs, "never/existed");
    REQUIRE_FALSE(value.ok());
    CHECK(value.error().vanished());
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "writers write the kernel's format") {
  add_cgroup("w");
  CgroupFs fs(root());
  REQUIRE(fs.write_cpu_max("w", CpuMax{30000, 100000}).ok());
  CHECK(read("w/cpu.max") == "30000 100000\n");
  REQUIRE(fs.write_cpu_max("w", CpuMax{std::nullopt, 100000}).ok());
  CHECK(read("w/cpu.max") == "max 100000\n");
  REQUIRE(fs.write_cpu_weight("w", 300).ok());
  CHECK(read("w/cpu.weight") == "300\n");
  REQUIRE(fs.write_memory_high("w", 64ull << 20).ok());
  CHECK(read("w/memory.high") == "67108864\n");
  REQUIRE(fs.write_memory_max("w", kUnlimited).ok());
  CHECK(read("w/memory.max") == "max\n");
  // Written values read back through the readers.
  CHECK(fs.read_memory_high("w").value() == 64ull << 20);
  CHECK(fs.read_cpu_weight("w").value() == 300);
}

namespace {

using Writer = std::function<ebb::Status(CgroupFs&, std::string_view)>;

const std::vector<std::pair<std::string, Writer>>& writers() {
  static const std::vector<std::pair<std::string, Writer>> table{
      {"cpu.max", [](CgroupFs& fs, std::string_view c) { return fs.write_cpu_max(c, CpuMax{1000, 100000}); }},
      {"cpu.weight", [](CgroupFs& fs, std::string_view c) { return fs.write_cpu_weight(c, 5); }},
      {"memory.high", [](CgroupFs& fs, std::string_view c) { return fs.write_memory_high(c, 1 << 20); }},
      {"memory.max", [](CgroupFs& fs, std::string_view c) { return fs.write_memory_max(c, 1 << 20); }},
  };
  return table;
}

}  // namespace

TEST_CASE_METHOD(FakeCgroupTree, "writers report a vanished cgroup") {
  CgroupFs fs(root());
  for (const auto& [file, write_value] : writers()) {
    CAPTURE(file);
    const auto status = write_value(fs, "gone.scope");
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().vanished());
    CHECK(status.error().cgroup == "gone.scope");
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "writers report a file refusing the value with file, cgroup and errno") {
  add_cgroup("full");
  CgroupFs fs(root());
  for (const auto& [file, write_value] : writers()) {
    CAPTURE(file);
    // /dev/full fails every write with ENOSPC, standing in for the kernel refusing a value.
    const auto path = root() / "full" / file;
    std::filesystem::remove(path);
    std::filesystem::create_symlink("/dev/full", path);
    const auto status = write_value(fs, "full");
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().errno_value == ENOSPC);
    CHECK(status.error().cgroup == "full");
    CHECK(status.error().path == path.string());
    CHECK_THAT(status.error().to_string(), Catch::Contains("cannot write") && Catch::Contains(file));
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "writers report a file that cannot be opened for writing") {
  add_cgroup("ro");
  CgroupFs fs(root());
  for (const auto& [file, write_value] : writers()) {
    CAPTURE(file);
    const auto path = root() / "ro" / file;
    // A read-only file stops only unprivileged users; a directory in its place stops root too.
    std::filesystem::remove(path);
    std::filesystem::create_directory(path);
    const auto status = write_value(fs, "ro");
    REQUIRE_FALSE(status.ok());
    CHECK(status.error().errno_value == EISDIR);
    CHECK_FALSE(status.error().vanished());
    CHECK(status.error().path == path.string());
  }
}

TEST_CASE_METHOD(FakeCgroupTree, "writers report a file absent because its controller is off") {
  add_cgroup("nomem");
  std::filesystem::remove(root() / "nomem" / "memory.max");
  CgroupFs fs(root());
  const auto status = fs.write_memory_max("nomem", 1 << 20);
  REQUIRE_FALSE(status.ok());
  CHECK_FALSE(status.error().vanished());
  CHECK(status.error().errno_value == EOPNOTSUPP);
  CHECK_THAT(status.error().message, Catch::Contains("memory.max"));
}
