// The rate controller, on injected time: grows on a clean path, backs off on loss and on
// growing queues, follows the slowest viewer, stays within bounds, says why.
#include <catch2/catch.hpp>

#include "transport/rate_controller.hpp"

using namespace vdistream::transport;

namespace {
constexpr int64_t kSecond = 1'000'000'000;

CongestionReport clean(int64_t t) { return CongestionReport{t, 0.0, 2.0, 0.0, 0}; }
CongestionReport lossy(int64_t t, double loss) { return CongestionReport{t, loss, 2.0, 0.0, 0}; }
}  // namespace

TEST_CASE("Rate controller grows about 8% a second on a clean path up to the maximum") {
  RateControllerConfig config;
  config.start_bps = 4'000'000;
  config.max_bps = 6'000'000;
  RateController rc(config);
  rc.add_viewer(1, 0);
  int decisions = 0;
  for (int s = 1; s <= 3; ++s)
    if (rc.report(1, clean(s * kSecond))) ++decisions;
  // 4 Mbit/s * 1.08^3 = 5.04: three decisions of >= 5% each.
  CHECK(decisions == 3);
  CHECK(rc.bitrate() == Approx(5'038'848).margin(2000));
  for (int s = 4; s <= 30; ++s) (void)rc.report(1, clean(s * kSecond));
  CHECK(rc.bitrate() == 6'000'000);
  CHECK(rc.decisions().back().reason.find("clean path") != std::string::npos);
}

TEST_CASE("Rate controller backs off in proportion to loss and never below the minimum") {
  RateControllerConfig config;
  config.start_bps = 6'000'000;
  config.min_bps = 1'000'000;
  RateController rc(config);
  rc.add_viewer(1, 0);
  auto d = rc.report(1, lossy(kSecond, 0.20));
  REQUIRE(d);
  CHECK(d->bitrate_bps == 5'400'000);  // 6 * (1 - 0.1)
  CHECK(d->reason.find("loss 20% > 10%") != std::string::npos);
  CHECK(d->limiting_viewer == 1);
  // Moderate loss: hold.
  CHECK(!rc.report(1, lossy(2 * kSecond, 0.05)));
  CHECK(rc.bitrate() == 5'400'000);
  for (int s = 3; s < 40; ++s) (void)rc.report(1, lossy(s * kSecond, 0.5));
  CHECK(rc.bitrate() == 1'000'000);
}

TEST_CASE("Rate controller sheds rate when TWCC says queues grow down to what arrives") {
  RateController rc(RateControllerConfig{});
  rc.add_viewer(1, 0);
  CongestionReport r{kSecond, 0.0, 20.0, 9.0, 3'000'000};  // delay gradient 9 ms > 5 ms
  auto d = rc.report(1, r);
  REQUIRE(d);
  CHECK(d->bitrate_bps == 3'000'000);  // max(min(6*0.85, 0.95*3), 6*0.5) = 3
  CHECK(d->reason.find("delay gradient") != std::string::npos);
}

TEST_CASE("Rate controller follows the slowest viewer and recovers when it leaves") {
  RateController rc(RateControllerConfig{});
  rc.add_viewer(1, 0);
  rc.add_viewer(2, 0);
  for (int s = 1; s <= 5; ++s) {
    (void)rc.report(1, clean(s * kSecond));
    (void)rc.report(2, lossy(s * kSecond, 0.3));
  }
  CHECK(rc.estimate(1) > 6'000'000);
  CHECK(rc.estimate(2) < 3'000'000);
  CHECK(rc.bitrate() == rc.estimate(2));
  CHECK(rc.decisions().back().limiting_viewer == 2);
  rc.remove_viewer(2, 6 * kSecond);
  CHECK(rc.bitrate() == rc.estimate(1));
  CHECK(rc.bitrate() > 6'000'000);
}

TEST_CASE("Rate controller ignores unknown viewers and tiny changes") {
  RateController rc(RateControllerConfig{});
  CHECK(!rc.report(9, clean(kSecond)));
  rc.add_viewer(1, 0);
  CHECK(!rc.report(1, clean(kSecond / 10)));  // +0.8%: not worth reconfiguring the encoder
  CHECK(rc.bitrate() == 6'000'000);
  CHECK(rc.decisions().empty());
}
