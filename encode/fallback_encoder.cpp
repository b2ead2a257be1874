#include "encode/fallback_encoder.hpp"

#include <fmt/format.h>

namespace vdistream::encode {

namespace {

EncoderCounters operator+(const EncoderCounters& a, const EncoderCounters& b) {
  return {a.frames + b.frames, a.keyframes + b.keyframes, a.tiles_converted + b.tiles_converted,
          a.full_frame_copies + b.full_frame_copies, a.reconfigurations + b.reconfigurations};
}

}  // namespace

core::Result<std::unique_ptr<FallbackEncoder>> FallbackEncoder::create(std::vector<FallbackLink> chain,
                                                                       const EncoderConfig& config, std::string log_scope) {
  if (chain.empty()) return core::Error{"no encoder backend to fall back on"};
  std::unique_ptr<FallbackEncoder> e(new FallbackEncoder(std::move(chain), config, std::move(log_scope)));
  if (!e->open_from(0, "", "")) {
    std::string reasons;
    for (const FallbackEvent& ev : e->events_) reasons += (reasons.empty() ? "" : "; ") + ev.reason;
    return core::Error{"no encoder backend would open: " + reasons};
  }
  return e;
}

FallbackEncoder::FallbackEncoder(std::vector<FallbackLink> chain, const EncoderConfig& config, std::string log_scope)
    : chain_(std::move(chain)), config_(config), log_(std::move(log_scope)), bitrate_(config.bitrate_bps) {}

void FallbackEncoder::record(FallbackEvent e) {
  std::lock_guard lock(mutex_);
  events_.push_back(std::move(e));
}

bool FallbackEncoder::open_from(size_t first, const std::string& given_up, const std::string& why) {
  std::string note = given_up.empty() ? "" : why;  // shown in name(), so status pages tell why
  for (size_t i = first; i < chain_.size(); ++i) {
    EncoderConfig cfg = config_;
    cfg.bitrate_bps = bitrate_;
    auto created = chain_[i].create(cfg);
    if (!created) {
      // A backend that will not open (no device, no session left) is passed over for this desktop only.
      note = chain_[i].backend + " would not open: " + created.error();
      record({chain_[i].backend, "", note, frames_});
      log_.warn("encoder {} would not open: {}", chain_[i].backend, created.error());
      continue;
    }
    index_ = i;
    current_ = std::move(*created);
    current_->request_keyframe();
    if (!given_up.empty()) {
      record({given_up, chain_[i].backend, why, frames_});
      log_.warn("encoder: {} took over from {} ({})", chain_[i].backend, given_up, why);
    }
    std::lock_guard lock(mutex_);
    current_name_ = current_->name() + (note.empty() ? "" : " (fell back: " + note + ")");
    current_backend_ = chain_[i].backend;
    current_counters_ = {};
    return true;
  }
  if (!given_up.empty()) record({given_up, "", why, frames_});
  return false;
}

void FallbackEncoder::retire_current() {
  EncoderCounters last = current_ ? current_->counters() : EncoderCounters{};
  current_.reset();
  std::lock_guard lock(mutex_);
  retired_ = retired_ + last;
  current_counters_ = {};
}

void FallbackEncoder::try_earlier_links() {
  for (size_t i = 0; i < index_; ++i) {
    EncoderConfig cfg = config_;
    cfg.bitrate_bps = bitrate_;
    auto created = chain_[i].create(cfg);
    if (!created) {
      log_.info("re-probe: {} still unavailable: {}", chain_[i].backend, created.error());
      continue;
    }
    std::string from = chain_[index_].backend;
    retire_current();
    index_ = i;
    current_ = std::move(*created);
    current_->request_keyframe();
    record({from, chain_[i].backend, "re-probe: " + chain_[i].backend + " is available again", frames_});
    log_.info("encoder: back on {} after a re-probe", chain_[i].backend);
    std::lock_guard lock(mutex_);
    current_name_ = current_->name();
    current_backend_ = chain_[i].backend;
    return;
  }
}

core::Result<std::vector<core::EncodedFrame>> FallbackEncoder::encode(const core::Frame& frame) {
  if (frame.buffer) {
    config_.width = frame.width();
    config_.height = frame.height();
  }
  if (reprobe_requested_.exchange(false) && index_ > 0) try_earlier_links();
  if (!current_) {
    // Every link failed before; start again from the top (the pipeline retries on the next frame).
    if (!open_from(0, "", "")) return core::Error{"no encoder backend would open"};
    keyframe_requested_ = true;
  }
  const bool fresh = current_->counters().frames == 0;
  if (keyframe_requested_.exchange(false)) current_->request_keyframe();
  current_->set_bitrate(bitrate_);
  core::Frame input = frame;
  if (fresh && input.buffer) input.damage = core::DamageRegion::full(input.width(), input.height());
  for (;;) {
    auto out = current_->encode(input);
    if (out) {
      frames_ += out->size();
      std::lock_guard lock(mutex_);
      current_counters_ = current_->counters();
      return out;
    }
    // Hand over: the next backend gets this very picture in full, as an IDR.
    const std::string failed = chain_[index_].backend;
    const std::string why = fmt::format("{} failed at frame {}: {}", failed, frame.sequence, out.error());
    log_.error("{}", why);
    retire_current();
    if (!open_from(index_ + 1, failed, why)) return core::Error{why + "; no backend left to take over"};
    current_->set_bitrate(bitrate_);
    if (input.buffer) input.damage = core::DamageRegion::full(input.width(), input.height());
  }
}

EncoderCounters FallbackEncoder::counters() const {
  std::lock_guard lock(mutex_);
  return retired_ + current_counters_;
}

std::string FallbackEncoder::name() const {
  std::lock_guard lock(mutex_);
  return current_name_;
}

std::string FallbackEncoder::current_backend() const {
  std::lock_guard lock(mutex_);
  return current_backend_;
}

std::vector<FallbackEvent> FallbackEncoder::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

}  // namespace vdistream::encode
