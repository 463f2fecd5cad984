#pragma once
// A weighted histogram with log-spaced buckets (64 per power of two, so a percentile is off by
// at most 0.8% of its value) over [2^-20, 2^20); smaller values count as zero, larger ones as
// the top bucket. Fixed size, no allocation after construction: the simulator adds to it
// every tick of every container.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <vector>

namespace ebb::sim {

class Histogram {
 public:
  Histogram();
  void add(double value, double weight = 1) {
    if (weight <= 0) return;
    if (value < kMin) {
      zero_ += weight;
    } else {
      counts_[bucket(value)] += weight;
    }
    total_ += weight;
  }
  // The value below which `p` percent of the weight lies (the midpoint of its bucket; 0 when
  // it falls among the zeros or the histogram is empty).
  double percentile(double p) const;
  double total() const { return total_; }
  void merge(const Histogram& other);

 private:
  static constexpr double kMin = 0x1.0p-20;
  // A float's exponent and top 6 mantissa bits name its bucket.
  static constexpr int kShift = 23 - 6;
  static constexpr std::uint32_t kMinBits = (127u - 20u) << 23;  // the bits of 2^-20
  static constexpr std::size_t kBuckets = 40u << 6;             // 2^-20 .. 2^20
  static std::size_t bucket(double value) {
    const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(value));
    return std::min<std::size_t>((bits - kMinBits) >> kShift, kBuckets - 1);
  }
  static double lower_edge(std::size_t b);

  double zero_ = 0;
  double total_ = 0;
  std::vector<double> counts_;
};

}  // namespace ebb::sim
