#include "daemon/common/duration.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace ebb {
namespace {

struct NumberAndUnit {
  double number;
  std::string_view unit;
};

Result<NumberAndUnit> split_number(std::string_view text, std::string_view what) {
  std::size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
  double number = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, number);
  if (end == 0 || ec != std::errc{} || ptr != text.data() + end || !std::isfinite(number)) {
    return Error{"invalid " + std::string(what) + " '" + std::string(text) + "'"};
  }
  return NumberAndUnit{number, text.substr(end)};
}

}  // namespace

Result<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  auto parsed = split_number(text, "duration");
  if (!parsed) return parsed.error();
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1.0}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  for (auto [unit, scale] : kUnits) {
    if (parsed->unit != unit) continue;
    // Converting a value that does not fit is undefined (found by fuzzing).
    const double ns = parsed->number * scale;
    if (!(ns < static_cast<double>(std::numeric_limits<std::int64_t>::max())))
      return Error{"invalid duration '" + std::string(text) + "': too large"};
    return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
  }
  return Error{"invalid duration '" + std::string(text) + "': unit must be one of ns, us, ms, s, m, h"};
}

Result<std::uint64_t> parse_bytes(std::string_view text) {
  auto parsed = split_number(text, "size");
  if (!parsed) return parsed.error();
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"", 1.0},           {"B", 1.0},          {"K", 1024.0},       {"KiB", 1024.0},
      {"M", 1048576.0},    {"MiB", 1048576.0},  {"G", 1073741824.0}, {"GiB", 1073741824.0},
      {"T", 1099511627776.0}, {"TiB", 1099511627776.0}};
  for (auto [unit, scale] : kUnits) {
    if (parsed->unit != unit) continue;
    const double bytes = parsed->number * scale;
    if (!(bytes < static_cast<double>(std::numeric_limits<std::uint64_t>::max())))
      return Error{"invalid size '" + std::string(text) + "': too large"};
    return static_cast<std::uint64_t>(bytes);
  }
  return Error{"invalid size '" + std::string(text) + "': unit must be one of B, K, M, G, T (binary)"};
}

std::string format_duration(std::chrono::nanoseconds d) {
  char buf[32];
  auto ns = d.count();
  if (ns % 1'000'000'000 == 0) std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(ns / 1'000'000'000));
  else if (ns % 1'000'000 == 0) std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ns / 1'000'000));
  else std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(ns / 1000));
  return buf;
}

std::string format_bytes(std::uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ULL << 30)) std::snprintf(buf, sizeof buf, "%.1fG", bytes / 1073741824.0);
  else if (bytes >= (1ULL << 20)) std::snprintf(buf, sizeof buf, "%.1fM", bytes / 1048576.0);
  else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1fK", bytes / 1024.0);
  else std::snprintf(buf, sizeof buf, "%lluB", static_cast<unsigned long long>(bytes));
  return buf;
}

}  // namespace ebb
