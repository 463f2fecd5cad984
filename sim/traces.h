#pragma once
// Trace inputs: the documented CSV format and the Google 2011 per-job series (GCD_VMs).
// Parsing is separate from I/O: the parse_* functions take text and are tested on strings.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/common/error.h"
#include "sim/workload.h"

namespace ebb::sim {

using NamedSeries = std::pair<std::string, Series>;

// CSV: a header line "time_s,container,cpu_cores,memory_bytes", then one row per sample; lines
// starting with '#' and blank lines are ignored. A container's times must increase; each
// sample holds until that container's next one. Containers keep their order of first
// appearance. Errors name `source` and the line.
Result<std::vector<NamedSeries>> parse_trace_csv(std::string_view text, std::string_view source);

// What the GCD percentages are a share of (the traces normalise to the largest machine).
struct GcdScale {
  double cpu_cores = 8;                    // 100% CPU
  std::uint64_t memory_bytes = 16ull << 30;  // 100% memory
  double step_s = 300;                     // one row per 5 minutes
};

// One GCD_VMs series: rows of "cpu_percent memory_percent", whitespace-separated.
Result<Series> parse_gcd_series(std::string_view text, std::string_view source, const GcdScale& scale);

// Every regular file of a .tar.gz, in archive order, decompressed in-process with zlib.
Result<std::vector<std::pair<std::string, std::string>>> read_tar_gz(const std::string& path);

// The GCD series of the archive, sorted by name.
Result<std::vector<NamedSeries>> read_gcd(const std::string& tar_gz_path, const GcdScale& scale);

}  // namespace ebb::sim
