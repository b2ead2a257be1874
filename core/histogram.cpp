#include "core/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace vdistream::core {

namespace {
constexpr size_t kOctaves = 58;  // enough for any int64 value
}

LatencyHistogram::LatencyHistogram() : buckets_(kSubBuckets * (kOctaves + 1), 0) {}

size_t LatencyHistogram::index_of(uint64_t v) {
  if (v < kSubBuckets) return size_t(v);
  int shift = 57 - std::countl_zero(v);  // so that v >> shift lands in [64, 128)
  uint64_t sub = (v >> shift) - kSubBuckets;  // [0, 64)
  return size_t(kSubBuckets + size_t(shift) * kSubBuckets + sub);
}

uint64_t LatencyHistogram::value_of(size_t index) {
  if (index < kSubBuckets) return index;
  size_t shift = (index - kSubBuckets) / kSubBuckets;
  uint64_t sub = (index - kSubBuckets) % kSubBuckets + kSubBuckets;
  return (sub << shift) + ((uint64_t(1) << shift) >> 1);  // middle of the bucket
}

void LatencyHistogram::record_ns(int64_t value) {
  uint64_t v = value < 0 ? 0 : uint64_t(value);
  size_t i = std::min(index_of(v), buckets_.size() - 1);
  ++buckets_[i];
  if (count_ == 0 || int64_t(v) < min_) min_ = int64_t(v);
  max_ = std::max(max_, int64_t(v));
  sum_ += double(v);
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  count_ += other.count_;
}

void LatencyHistogram::clear() {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  count_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

int64_t LatencyHistogram::percentile_ns(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = std::max<uint64_t>(1, uint64_t(std::ceil(p / 100.0 * double(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(int64_t(value_of(i)), min_, max_);
  }
  return max_;
}

}  // namespace vdistream::core
