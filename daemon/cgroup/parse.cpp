// Pure parsers for cgroup v2 interface files (Documentation/admin-guide/cgroup-v2.rst,
// "Interface Files" and "Format"). Keys the kernel may add later are skipped; anything that is
// not of the file's shape is rejected with the offending line.
#include <array>
#include <charconv>
#include <string>
#include <utility>

#include "daemon/cgroup/cgroup.h"

namespace ebb::cgroup {
namespace {

Error content_error(std::string message) {
  Error e;
  e.message = std::move(message);
  return e;
}

Error parse_error(std::string what, std::size_t line_number, std::string_view line) {
  return content_error("line " + std::to_string(line_number) + ": " + what + ": '" + std::string(line) + "'");
}

Error empty_error() { return content_error("empty content"); }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Takes the next whitespace-separated token off the front of `rest` ("" when none is left).
std::string_view next_token(std::string_view& rest) {
  while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
  std::size_t end = 0;
  while (end < rest.size() && !is_space(rest[end])) ++end;
  const auto token = rest.substr(0, end);
  rest.remove_prefix(end);
  return token;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

std::optional<double> to_double(std::string_view s) {
  double value = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, std::chars_format::fixed);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || value < 0) return std::nullopt;
  return value;
}

// Calls on_line(line_number, line) for each non-blank line; stops at the first error. Text
// with no line at all is an error: every file we parse has at least one.
template <typename OnLine>
std::optional<Error> for_each_line(std::string_view text, OnLine on_line) {
  std::size_t number = 0;
  bool any = false;
  while (!text.empty()) {
    const auto newline = text.find('\n');
    const auto line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    ++number;
    if (trim(line).empty()) continue;
    any = true;
    if (auto error = on_line(number, line)) return error;
  }
  if (!any) return empty_error();
  return std::nullopt;
}

template <typename T>
struct Field {
  std::string_view key;
  std::uint64_t T::*member;
};

// Flat keyed files ("key value" per line): cpu.stat, memory.events, memory.stat.
template <typename T, std::size_t N>
Result<T> parse_keyed(std::string_view text, const std::array<Field<T>, N>& fields) {
  T out;
  auto error = for_each_line(text, [&](std::size_t number, std::string_view line) -> std::optional<Error> {
    auto rest = line;
    const auto key = next_token(rest);
    const auto value = to_u64(next_token(rest));
    if (!value || !trim(rest).empty()) return parse_error("expected 'key unsigned-integer'", number, line);
    for (const auto& field : fields) {
      if (field.key == key) out.*field.member = *value;
    }
    return std::nullopt;
  });
  if (error) return *error;
  return out;
}

// A file holding a single value (cpu.weight, memory.max, ...): exactly one token.
Result<std::string_view> single_token(std::string_view text) {
  auto rest = text;
  const auto token = next_token(rest);
  if (token.empty()) return empty_error();
  if (!trim(rest).empty()) return parse_error("expected a single value", 1, trim(text));
  return token;
}

}  // namespace

Result<CpuStat> parse_cpu_stat(std::string_view text) {
  static constexpr std::array<Field<CpuStat>, 6> kFields{{
      {"usage_usec", &CpuStat::usage_usec},
      {"user_usec", &CpuStat::user_usec},
      {"system_usec", &CpuStat::system_usec},
      {"nr_periods", &CpuStat::nr_periods},
      {"nr_throttled", &CpuStat::nr_throttled},
      {"throttled_usec", &CpuStat::throttled_usec},
  }};
  return parse_keyed(text, kFields);
}

Result<CpuMax> parse_cpu_max(std::string_view text) {
  auto rest = text;
  const auto quota = next_token(rest);
  const auto period = to_u64(next_token(rest));
  const auto line = trim(text);
  if (quota.empty()) return empty_error();
  if (!period || *period == 0 || !trim(rest).empty()) return parse_error("expected '$MAX $PERIOD'", 1, line);
  CpuMax out;
  out.period_usec = *period;
  if (quota != "max") {
    out.quota_usec = to_u64(quota);
    if (!out.quota_usec) return parse_error("quota is neither 'max' nor an unsigned integer", 1, line);
  }
  return out;
}

Result<std::uint32_t> parse_cpu_weight(std::string_view text) {
  const auto token = single_token(text);
  if (!token) return token.error();
  const auto value = to_u64(*token);
  // The kernel's range for cpu.weight.
  if (!value || *value < 1 || *value > 10000) return parse_error("expected a weight in 1..10000", 1, *token);
  return static_cast<std::uint32_t>(*value);
}

Result<std::uint64_t> parse_memory_value(std::string_view text) {
  const auto token = single_token(text);
  if (!token) return token.error();
  if (*token == "max") return kUnlimited;
  const auto value = to_u64(*token);
  if (!value) return parse_error("expected 'max' or a byte count", 1, *token);
  return *value;
}

Result<MemoryEvents> parse_memory_events(std::string_view text) {
  static constexpr std::array<Field<MemoryEvents>, 6> kFields{{
      {"low", &MemoryEvents::low},
      {"high", &MemoryEvents::high},
      {"max", &MemoryEvents::max},
      {"oom", &MemoryEvents::oom},
      {"oom_kill", &MemoryEvents::oom_kill},
      {"oom_group_kill", &MemoryEvents::oom_group_kill},
  }};
  return parse_keyed(text, kFields);
}

Result<MemoryStat> parse_memory_stat(std::string_view text) {
  static constexpr std::array<Field<MemoryStat>, 12> kFields{{
      {"anon", &MemoryStat::anon},
      {"file", &MemoryStat::file},
      {"kernel", &MemoryStat::kernel},
      {"shmem", &MemoryStat::shmem},
      {"active_anon", &MemoryStat::active_anon},
      {"inactive_anon", &MemoryStat::inactive_anon},
      {"active_file", &MemoryStat::active_file},
      {"inactive_file", &MemoryStat::inactive_file},
      {"workingset_refault_anon", &MemoryStat::workingset_refault_anon},
      {"workingset_refault_file", &MemoryStat::workingset_refault_file},
      {"pgscan", &MemoryStat::pgscan},
      {"pgsteal", &MemoryStat::pgsteal},
  }};
  return parse_keyed(text, kFields);
}

// "some avg10=0.12 avg60=0.00 avg300=0.00 total=1234" and optionally a "full ..." line
// (Documentation/accounting/psi.rst). Unknown key=value pairs and unknown line kinds of the
// same shape are skipped; the four known values are required.
Result<Pressure> parse_pressure(std::string_view text) {
  static constexpr std::array<std::pair<std::string_view, double PressureLine::*>, 3> kAverages{{
      {"avg10", &PressureLine::avg10},
      {"avg60", &PressureLine::avg60},
      {"avg300", &PressureLine::avg300},
  }};
  constexpr unsigned kAllSeen = (1u << (kAverages.size() + 1)) - 1;
  Pressure out;
  bool have_some = false;
  auto error = for_each_line(text, [&](std::size_t number, std::string_view line) -> std::optional<Error> {
    auto rest = line;
    const auto kind = next_token(rest);
    PressureLine parsed;
    unsigned seen = 0;  // one bit per required key: the averages, then total
    if (trim(rest).empty()) return parse_error("expected key=value pairs after '" + std::string(kind) + "'", number, line);
    for (auto token = next_token(rest); !token.empty(); token = next_token(rest)) {
      const auto eq = token.find('=');
      if (eq == std::string_view::npos || eq == 0) return parse_error("expected key=value", number, line);
      const auto key = token.substr(0, eq);
      const auto value = token.substr(eq + 1);
      if (key == "total") {
        const auto total = to_u64(value);
        if (!total) return parse_error("total is not an unsigned integer", number, line);
        parsed.total_usec = *total;
        seen |= 1u << kAverages.size();
        continue;
      }
      const auto avg = to_double(value);
      if (!avg) return parse_error("value of " + std::string(key) + " is not a number", number, line);
      for (std::size_t i = 0; i < kAverages.size(); ++i) {
        if (kAverages[i].first != key) continue;
        parsed.*kAverages[i].second = *avg;
        seen |= 1u << i;
      }
    }
    if (kind != "some" && kind != "full") return std::nullopt;
    if (seen != kAllSeen) return parse_error("expected avg10=, avg60=, avg300= and total=", number, line);
    if (kind == "some") {
      out.some = parsed;
      have_some = true;
    } else {
      out.full = parsed;
    }
    return std::nullopt;
  });
  if (error) return *error;
  if (!have_some) return content_error("no 'some' line");
  return out;
}

std::set<std::string> parse_controllers(std::string_view text) {
  std::set<std::string> out;
  for (auto token = next_token(text); !token.empty(); token = next_token(text)) out.emplace(token);
  return out;
}

std::string format_cpu_max(const CpuMax& value) {
  return (value.quota_usec ? std::to_string(*value.quota_usec) : std::string("max")) + " " +
         std::to_string(value.period_usec);
}

std::string format_memory_value(std::uint64_t bytes) {
  return bytes == kUnlimited ? std::string("max") : std::to_string(bytes);
}

}  // namespace ebb::cgroup
