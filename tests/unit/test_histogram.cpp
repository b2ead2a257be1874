#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "core/histogram.hpp"

namespace core = vdistream::core;
using core::LatencyHistogram;

namespace {

// Percentiles are bucket representatives: allow 2 % of the exact value.
Approx within_2_percent(double exact) { return Approx(exact).epsilon(0.02); }

LatencyHistogram uniform(int64_t from, int64_t to) {
  LatencyHistogram h;
  for (int64_t v = from; v <= to; ++v) h.record_ns(v);
  return h;
}

}  // namespace

TEST_CASE("an empty histogram reports zero for everything", "[histogram]") {
  LatencyHistogram h;
  CHECK(h.count() == 0);
  CHECK(h.min_ns() == 0);
  CHECK(h.max_ns() == 0);
  CHECK(h.mean_ns() == 0.0);
  CHECK(h.percentile_ns(0) == 0);
  CHECK(h.percentile_ns(50) == 0);
  CHECK(h.percentile_ns(100) == 0);
  CHECK(h.percentile_ms(99) == 0.0);
}

TEST_CASE("percentiles of a uniform distribution are within 2 percent", "[histogram]") {
  LatencyHistogram h = uniform(1, 100000);
  REQUIRE(h.count() == 100000);
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9}) {
    INFO("p" << p);
    CHECK(double(h.percentile_ns(p)) == within_2_percent(p * 1000.0));
  }
  CHECK(h.percentile_ms(50) == within_2_percent(0.05));
}

TEST_CASE("the extreme percentiles stay within the recorded minimum and maximum", "[histogram]") {
  LatencyHistogram h = uniform(1000, 5000);
  // p0 is the representative of the lowest bucket: near the minimum, never below it.
  CHECK(h.percentile_ns(0) >= 1000);
  CHECK(double(h.percentile_ns(0)) == within_2_percent(1000));
  CHECK(h.percentile_ns(100) == 5000);
  CHECK(h.percentile_ns(-5) == h.percentile_ns(0));  // p is clamped to [0, 100]
  CHECK(h.percentile_ns(250) == 5000);
}

TEST_CASE("small values are recorded exactly", "[histogram]") {
  LatencyHistogram h = uniform(0, 63);
  CHECK(h.percentile_ns(50) == 31);
  CHECK(h.percentile_ns(100) == 63);
}

TEST_CASE("every percentile of a constant is that constant", "[histogram]") {
  int64_t value = GENERATE(int64_t(0), int64_t(7), int64_t(12345), int64_t(16'666'667), int64_t(3'000'000'000));
  LatencyHistogram h;
  for (int i = 0; i < 1000; ++i) h.record_ns(value);
  for (double p : {0.0, 1.0, 50.0, 99.0, 100.0}) {
    INFO("value " << value << " p" << p);
    CHECK(h.percentile_ns(p) == value);
  }
  CHECK(h.min_ns() == value);
  CHECK(h.max_ns() == value);
  CHECK(h.mean_ns() == double(value));
}

TEST_CASE("min, max and mean are exact", "[histogram]") {
  LatencyHistogram h;
  for (int64_t v : {5000, 1000, 1234567, 42, 99999})
    h.record_ns(v);
  CHECK(h.count() == 5);
  CHECK(h.min_ns() == 42);
  CHECK(h.max_ns() == 1234567);
  CHECK(h.mean_ns() == double(5000 + 1000 + 1234567 + 42 + 99999) / 5.0);
}

TEST_CASE("merging combines counts, extremes, mean and percentiles", "[histogram]") {
  LatencyHistogram low = uniform(1, 50000);
  LatencyHistogram high = uniform(50001, 100000);
  LatencyHistogram merged;
  merged.merge(low);
  merged.merge(high);
  CHECK(merged.count() == 100000);
  CHECK(merged.min_ns() == 1);
  CHECK(merged.max_ns() == 100000);
  CHECK(merged.mean_ns() == Approx(50000.5));
  LatencyHistogram whole = uniform(1, 100000);
  for (double p : {1.0, 50.0, 90.0, 99.0}) {
    INFO("p" << p);
    CHECK(merged.percentile_ns(p) == whole.percentile_ns(p));
  }

  // Merging an empty histogram changes nothing; merging into an empty one copies.
  LatencyHistogram copy;
  copy.merge(LatencyHistogram());
  CHECK(copy.count() == 0);
  CHECK(copy.min_ns() == 0);
  high.merge(LatencyHistogram());
  CHECK(high.count() == 50000);
  CHECK(high.min_ns() == 50001);

  // The smaller minimum wins whichever side it comes from.
  LatencyHistogram a, b;
  a.record_ns(500);
  b.record_ns(100);
  b.record_ns(900);
  a.merge(b);
  CHECK(a.min_ns() == 100);
  CHECK(a.max_ns() == 900);
  CHECK(a.mean_ns() == 500.0);
}

TEST_CASE("clear forgets everything recorded", "[histogram]") {
  LatencyHistogram h = uniform(10, 20);
  h.clear();
  CHECK(h.count() == 0);
  CHECK(h.max_ns() == 0);
  CHECK(h.percentile_ns(50) == 0);
  h.record_ns(77);
  CHECK(h.min_ns() == 77);
  CHECK(h.max_ns() == 77);
  CHECK(h.mean_ns() == 77.0);
}

TEST_CASE("negative values are recorded as zero", "[histogram]") {
  LatencyHistogram h;
  h.record_ns(-5);
  h.record_ns(std::numeric_limits<int64_t>::min());
  CHECK(h.count() == 2);
  CHECK(h.min_ns() == 0);
  CHECK(h.max_ns() == 0);
  CHECK(h.mean_ns() == 0.0);
  CHECK(h.percentile_ns(50) == 0);
  h.record_ns(100);
  CHECK(h.min_ns() == 0);
  CHECK(h.max_ns() == 100);
}

TEST_CASE("huge values are recorded without overflow", "[histogram]") {
  // 1e15 ns is what "now - 0" gives when a stage timestamp was never set: a real failure mode.
  constexpr int64_t kHuge = 1'000'000'000'000'000;
  LatencyHistogram h;
  for (int i = 0; i < 20000; ++i) h.record_ns(kHuge);  // their sum does not fit in int64
  h.record_ns(1000);
  CHECK(h.count() == 20001);
  CHECK(h.max_ns() == kHuge);
  CHECK(h.min_ns() == 1000);
  CHECK(h.mean_ns() == Approx(double(kHuge) * 20000.0 / 20001.0));
  CHECK(double(h.percentile_ns(50)) == within_2_percent(double(kHuge)));
  CHECK(h.percentile_ms(99) == within_2_percent(1e9));

  LatencyHistogram extreme;
  extreme.record_ns(std::numeric_limits<int64_t>::max());
  extreme.record_ns(std::numeric_limits<int64_t>::max());
  CHECK(extreme.max_ns() == std::numeric_limits<int64_t>::max());
  CHECK(extreme.percentile_ns(100) == std::numeric_limits<int64_t>::max());
  CHECK(extreme.mean_ns() == Approx(double(std::numeric_limits<int64_t>::max())));
}
