#pragma once
// Seeded, platform-independent randomness for workloads: the same seed gives the same trace
// bit for bit on every machine (std::uniform_real_distribution is not portable across
// standard libraries, so draws are made from raw 64-bit words here).
#include <cmath>
#include <cstdint>
#include <string_view>

namespace ebb::sim {

// splitmix64: turns (seed, stream ids) into well-mixed independent generator states.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// FNV-1a: a stable hash of names (std::hash differs between standard libraries).
constexpr std::uint64_t hash_name(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(mix64(seed) | 1) {}
  // xorshift64*: fast and good enough for demand noise.
  std::uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dull;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool chance(double p) { return uniform() < p; }
  // Exponential with the given mean, for on/off and spike durations.
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }

 private:
  std::uint64_t state_;
};

}  // namespace ebb::sim
