#include "sim/histogram.h"

#include <algorithm>
#include <bit>

namespace ebb::sim {

double Histogram::lower_edge(std::size_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>((b << kShift) + kMinBits));
}

Histogram::Histogram() : counts_(kBuckets, 0.0) {}

double Histogram::percentile(double p) const {
  if (total_ <= 0) return 0;
  const double target = std::clamp(p, 0.0, 100.0) / 100 * total_;
  double seen = zero_;
  if (seen >= target) return 0;
  for (std::size_t b = 0; b < kBuckets; ++b) {
    seen += counts_[b];
    if (counts_[b] > 0 && seen >= target * (1 - 1e-12)) return (lower_edge(b) + lower_edge(b + 1)) / 2;
  }
  return lower_edge(kBuckets - 1);
}

void Histogram::merge(const Histogram& other) {
  zero_ += other.zero_;
  total_ += other.total_;
  for (std::size_t b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
}

}  // namespace ebb::sim
