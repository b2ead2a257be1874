// A latency histogram with ~1.5 % resolution over ns..hours, cheap to record into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vdistream::core {

class LatencyHistogram {
 public:
  LatencyHistogram();
  void record_ns(int64_t value);
  void merge(const LatencyHistogram& other);
  void clear();

  uint64_t count() const { return count_; }
  int64_t min_ns() const { return count_ ? min_ : 0; }
  int64_t max_ns() const { return max_; }
  double mean_ns() const { return count_ ? sum_ / double(count_) : 0.0; }
  // p in [0, 100]; the representative value of the bucket holding that rank (0 when empty).
  int64_t percentile_ns(double p) const;
  double percentile_ms(double p) const { return double(percentile_ns(p)) / 1e6; }

 private:
  static constexpr int kSubBuckets = 64;
  static size_t index_of(uint64_t v);
  static uint64_t value_of(size_t index);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  int64_t min_ = 0, max_ = 0;
  double sum_ = 0;  // not int64: 10^4 samples of 10^15 ns (an unset timestamp) would overflow it
};

}  // namespace vdistream::core
