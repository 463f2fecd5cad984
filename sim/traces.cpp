#include "sim/traces.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <optional>

namespace ebb::sim {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  s = trim(s);
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

Error at(std::string_view source, std::size_t line, const std::string& message) {
  return Error{std::string(source) + ":" + std::to_string(line) + ": " + message};
}

// Calls f(line_number, line) for each line of text.
template <typename F>
void for_each_line(std::string_view text, F&& f) {
  std::size_t number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    ++number;
    if (!f(number, text.substr(0, nl))) return;
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

Result<std::vector<NamedSeries>> parse_trace_csv(std::string_view text, std::string_view source) {
  std::vector<NamedSeries> out;
  std::map<std::string, std::size_t, std::less<>> index;
  std::optional<Error> error;
  bool header = false;
  for_each_line(text, [&](std::size_t n, std::string_view line) {
    line = trim(line);
    if (line.empty() || line.front() == '#') return true;
    if (!header) {
      if (line != "time_s,container,cpu_cores,memory_bytes") {
        error = at(source, n, "expected the header 'time_s,container,cpu_cores,memory_bytes'");
        return false;
      }
      header = true;
      return true;
    }
    std::string_view fields[4];
    std::size_t count = 0;
    for (std::string_view rest = line;; ++count) {
      const auto comma = rest.find(',');
      if (count < 4) fields[count] = trim(rest.substr(0, comma));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (count != 3) {
      error = at(source, n, "expected 4 fields, found " + std::to_string(count + 1));
      return false;
    }
    double time = 0, cpu = 0;
    std::uint64_t memory = 0;
    if (!parse_number(fields[0], time) || !std::isfinite(time) || time < 0) {
      error = at(source, n, "time_s '" + std::string(fields[0]) + "' is not a non-negative number");
    } else if (fields[1].empty()) {
      error = at(source, n, "empty container name");
    } else if (!parse_number(fields[2], cpu) || !std::isfinite(cpu) || cpu < 0) {
      error = at(source, n, "cpu_cores '" + std::string(fields[2]) + "' is not a non-negative number");
    } else if (!parse_number(fields[3], memory)) {
      error = at(source, n, "memory_bytes '" + std::string(fields[3]) + "' is not a non-negative integer");
    }
    if (error) return false;
    auto [it, inserted] = index.try_emplace(std::string(fields[1]), out.size());
    if (inserted) out.push_back({std::string(fields[1]), {}});
    Series& s = out[it->second].second;
    if (!s.times_s.empty() && time <= s.times_s.back()) {
      error = at(source, n, "time " + std::string(fields[0]) + " of container '" + std::string(fields[1]) +
                                "' does not increase");
      return false;
    }
    s.times_s.push_back(time);
    s.cpu_cores.push_back(cpu);
    s.memory_bytes.push_back(memory);
    return true;
  });
  if (error) return *error;
  if (!header) return at(source, 1, "empty trace: no header");
  if (out.empty()) return at(source, 1, "no samples");
  return out;
}

Result<Series> parse_gcd_series(std::string_view text, std::string_view source, const GcdScale& scale) {
  Series s;
  std::optional<Error> error;
  for_each_line(text, [&](std::size_t n, std::string_view line) {
    line = trim(line);
    if (line.empty()) return true;
    const auto gap = line.find_first_of(" \t");
    double cpu = 0, memory = 0;
    if (gap == std::string_view::npos || !parse_number(line.substr(0, gap), cpu) ||
        !parse_number(line.substr(gap), memory) || !std::isfinite(cpu) || cpu < 0 || memory < 0) {
      error = at(source, n, "expected 'cpu_percent memory_percent'");
      return false;
    }
    // Converting a byte count that does not fit 64 bits (or NaN) is undefined (found by fuzzing).
    const double bytes = memory / 100 * static_cast<double>(scale.memory_bytes);
    if (!(bytes < static_cast<double>(std::numeric_limits<std::uint64_t>::max()))) {
      error = at(source, n, "memory_percent '" + std::string(trim(line.substr(gap))) + "' is out of range");
      return false;
    }
    s.times_s.push_back(static_cast<double>(s.times_s.size()) * scale.step_s);
    s.cpu_cores.push_back(cpu / 100 * scale.cpu_cores);
    s.memory_bytes.push_back(static_cast<std::uint64_t>(bytes));
    return true;
  });
  if (error) return *error;
  if (s.times_s.empty()) return at(source, 1, "no samples");
  return s;
}

Result<std::vector<std::pair<std::string, std::string>>> read_tar_gz(const std::string& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), gzclose);
  if (!gz) return system_error("cannot open", path, errno ? errno : ENOENT);
  std::string data;
  char buf[1 << 16];
  for (int got; (got = gzread(gz.get(), buf, sizeof buf)) > 0;) data.append(buf, static_cast<std::size_t>(got));
  int zerr = 0;
  if (gzerror(gz.get(), &zerr); zerr != Z_OK && zerr != Z_STREAM_END) return Error{"corrupt gzip data", path};

  // ustar: 512-byte headers (name at 0, octal size at 124, type at 156, prefix at 345), data
  // padded to 512 bytes, two zero blocks at the end.
  std::vector<std::pair<std::string, std::string>> files;
  std::size_t pos = 0;
  while (pos + 512 <= data.size() && data[pos] != '\0') {
    const char* h = data.data() + pos;
    auto field = [h](std::size_t off, std::size_t len) {
      std::string_view f(h + off, len);
      return f.substr(0, f.find('\0'));
    };
    std::uint64_t size = 0;
    const auto size_field = trim(field(124, 12));
    if (std::from_chars(size_field.data(), size_field.data() + size_field.size(), size, 8).ec != std::errc())
      return Error{"bad tar header at offset " + std::to_string(pos), path};
    const char type = h[156];
    std::string name(field(345, 155));
    if (!name.empty()) name += '/';
    name += field(0, 100);
    pos += 512;
    if (pos + size > data.size()) return Error{"truncated tar member " + name, path};
    if (type == '0' || type == '\0') files.emplace_back(std::move(name), data.substr(pos, size));
    pos += (size + 511) / 512 * 512;
  }
  return files;
}

Result<std::vector<NamedSeries>> read_gcd(const std::string& path, const GcdScale& scale) {
  auto files = read_tar_gz(path);
  if (!files) return files.error();
  std::vector<NamedSeries> out;
  for (auto& [name, text] : *files) {
    auto series = parse_gcd_series(text, path + ":" + name, scale);
    if (!series) return series.error();
    out.emplace_back(name.substr(name.rfind('/') + 1), std::move(*series));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (out.empty()) return Error{"no series in the archive", path};
  return out;
}

}  // namespace ebb::sim
