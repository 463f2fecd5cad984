#pragma once
// Human durations and sizes as users write them in flags and config: "200ms", "1.5s", "2m";
// "512M", "1G", "300MiB", "100000" (bytes).
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/common/error.h"

namespace ebb {

Result<std::chrono::nanoseconds> parse_duration(std::string_view text);
Result<std::uint64_t> parse_bytes(std::string_view text);
std::string format_duration(std::chrono::nanoseconds d);
std::string format_bytes(std::uint64_t bytes);

}  // namespace ebb
