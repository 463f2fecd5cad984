#pragma once
// The libFuzzer entry point every target defines. With -DEBB_FUZZ=ON it is driven by libFuzzer;
// otherwise replay_main.cpp feeds it the seed corpus, so every build checks the seeds.
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace ebb::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace ebb::fuzz
