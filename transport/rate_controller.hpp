// Turns what the viewers' congestion feedback says (TWCC, RTCP loss and round trip) into one
// encoder bitrate per desktop: each viewer gets its own loss/delay-based estimate, the encoder
// follows the slowest active viewer, within the configured bounds. Time is passed in, so it is
// tested without sleeping.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace vdistream::transport {

struct RateControllerConfig {
  uint32_t min_bps = 500'000;
  uint32_t max_bps = 20'000'000;
  uint32_t start_bps = 6'000'000;
  double increase_per_second = 0.08;  // multiplicative growth while the path is clean
  double loss_high = 0.10;            // fraction lost above which we back off
  double loss_low = 0.02;             // below which we may grow
  double delay_gradient_high_ms = 5.0;  // TWCC average delta-of-delta: queues are building
  double rtt_high_ms = 250.0;
  double min_change = 0.05;  // smaller changes are not worth an encoder reconfiguration
};

// One viewer's feedback at one moment.
struct CongestionReport {
  int64_t now_ns = 0;
  double fraction_lost = 0;     // 0..1, RTCP or TWCC
  double rtt_ms = 0;            // 0 if unknown
  double delay_gradient_ms = 0; // TWCC avg-delta-of-delta (ms), 0 if unknown
  uint32_t received_bps = 0;    // TWCC bitrate-recv, 0 if unknown
};

struct RateDecision {
  int64_t at_ns = 0;
  uint32_t bitrate_bps = 0;
  uint64_t limiting_viewer = 0;
  std::string reason;  // "viewer 3: loss 14% > 10%: 6000 → 5160 kbit/s"
};

class RateController {
 public:
  explicit RateController(const RateControllerConfig& config = {});

  void add_viewer(uint64_t viewer, int64_t now_ns);
  void remove_viewer(uint64_t viewer, int64_t now_ns);
  // Feeds one report; returns a decision when the encoder bitrate should change.
  std::optional<RateDecision> report(uint64_t viewer, const CongestionReport& report);

  uint32_t bitrate() const { return current_bps_; }
  uint32_t estimate(uint64_t viewer) const;
  const std::deque<RateDecision>& decisions() const { return decisions_; }  // the last 32
  const RateControllerConfig& config() const { return config_; }

 private:
  struct Viewer {
    double estimate_bps = 0;
    int64_t last_ns = 0;
    std::string last_reason;
  };
  std::optional<RateDecision> decide(int64_t now_ns);
  double clamp(double bps) const;

  RateControllerConfig config_;
  std::map<uint64_t, Viewer> viewers_;
  uint32_t current_bps_;
  std::deque<RateDecision> decisions_;
};

}  // namespace vdistream::transport
