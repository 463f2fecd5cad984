#pragma once
// The usage model of VPA's recommender and of Autopilot's moving window: a histogram over
// exponentially growing buckets where each sample's weight decays with a half-life, so old
// usage fades. Implemented by giving new samples exponentially larger weights (2^(t / half
// life)) and rescaling now and then, which keeps adding a sample O(1).
#include <vector>

namespace ebb::sim {

class DecayingHistogram {
 public:
  // Bucket 0 holds [0, first); bucket k holds [first * ratio^(k-1), first * ratio^k).
  DecayingHistogram(double first, double ratio, double max_value, double half_life_s);

  // Moves the clock to t_s (never backwards): later samples weigh more.
  void advance(double t_s);
  void add(double value, double weight = 1);
  bool empty() const { return total_ <= 0; }
  // The upper edge of the bucket where `p` percent of the decayed weight is reached.
  double percentile(double p) const;

 private:
  std::size_t bucket(double value) const;

  double first_, log_ratio_, half_life_s_;
  double scale_ = 1;        // weight of a sample added now
  double reference_s_ = 0;  // time at which scale_ was 1 after the last rescale
  double total_ = 0;
  std::vector<double> weights_;
};

}  // namespace ebb::sim
