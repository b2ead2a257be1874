#include "transport/rate_controller.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace vdistream::transport {

RateController::RateController(const RateControllerConfig& config)
    : config_(config), current_bps_(uint32_t(clamp(config.start_bps))) {}

double RateController::clamp(double bps) const {
  return std::clamp(bps, double(config_.min_bps), double(config_.max_bps));
}

void RateController::add_viewer(uint64_t viewer, int64_t now_ns) {
  // A newcomer starts where the encoder is: it has shown nothing yet.
  viewers_[viewer] = Viewer{double(current_bps_), now_ns, "joined"};
}

void RateController::remove_viewer(uint64_t viewer, int64_t now_ns) {
  viewers_.erase(viewer);
  (void)decide(now_ns);
}

uint32_t RateController::estimate(uint64_t viewer) const {
  auto it = viewers_.find(viewer);
  return it == viewers_.end() ? 0 : uint32_t(it->second.estimate_bps);
}

std::optional<RateDecision> RateController::report(uint64_t id, const CongestionReport& r) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return std::nullopt;
  Viewer& v = it->second;
  const double dt = std::clamp(double(r.now_ns - v.last_ns) / 1e9, 0.0, 2.0);
  v.last_ns = r.now_ns;
  if (r.fraction_lost > config_.loss_high) {
    // Back off in proportion to the loss, as loss-based GCC does.
    v.estimate_bps = clamp(v.estimate_bps * (1.0 - 0.5 * r.fraction_lost));
    v.last_reason = fmt::format("loss {:.0f}% > {:.0f}%", r.fraction_lost * 100, config_.loss_high * 100);
  } else if (r.delay_gradient_ms > config_.delay_gradient_high_ms || r.rtt_ms > config_.rtt_high_ms) {
    // Queues are growing: settle just under what actually arrives, or shed 15%.
    double target = v.estimate_bps * 0.85;
    if (r.received_bps > 0) target = std::min(target, 0.95 * r.received_bps);
    v.estimate_bps = clamp(std::max(target, v.estimate_bps * 0.5));
    v.last_reason = r.delay_gradient_ms > config_.delay_gradient_high_ms
                        ? fmt::format("delay gradient {:.1f} ms > {:.1f} ms", r.delay_gradient_ms,
                                      config_.delay_gradient_high_ms)
                        : fmt::format("round trip {:.0f} ms > {:.0f} ms", r.rtt_ms, config_.rtt_high_ms);
  } else if (r.fraction_lost < config_.loss_low) {
    v.estimate_bps = clamp(v.estimate_bps * std::pow(1.0 + config_.increase_per_second, dt));
    v.last_reason = fmt::format("clean path (loss {:.1f}%)", r.fraction_lost * 100);
  } else {
    v.last_reason = fmt::format("holding (loss {:.1f}%)", r.fraction_lost * 100);
  }
  return decide(r.now_ns);
}

std::optional<RateDecision> RateController::decide(int64_t now_ns) {
  if (viewers_.empty()) return std::nullopt;
  auto slowest = std::min_element(viewers_.begin(), viewers_.end(),
                                  [](const auto& a, const auto& b) { return a.second.estimate_bps < b.second.estimate_bps; });
  const double target = clamp(slowest->second.estimate_bps);
  const double change = std::abs(target - current_bps_) / double(current_bps_);
  const bool at_bound = (target == config_.min_bps || target == config_.max_bps) && uint32_t(target) != current_bps_;
  if (change < config_.min_change && !at_bound) return std::nullopt;
  RateDecision d;
  d.at_ns = now_ns;
  d.limiting_viewer = slowest->first;
  d.reason = fmt::format("viewer {}: {}: {} → {} kbit/s", slowest->first, slowest->second.last_reason,
                         current_bps_ / 1000, uint32_t(target) / 1000);
  current_bps_ = uint32_t(target);
  d.bitrate_bps = current_bps_;
  decisions_.push_back(d);
  if (decisions_.size() > 32) decisions_.pop_front();
  return d;
}

}  // namespace vdistream::transport
