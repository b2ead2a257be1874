#include "spice/playback.hpp"

#include <spice.h>

#include <algorithm>
#include <cstring>

namespace vdistream::spice {

namespace {
const SpicePlaybackInterface kPlaybackInterface = {
    {SPICE_INTERFACE_PLAYBACK, "vdistream playback", SPICE_INTERFACE_PLAYBACK_MAJOR, SPICE_INTERFACE_PLAYBACK_MINOR}};
}

struct SpicePlayback::Instance {
  SpicePlaybackInstance sin{};
};

SpicePlayback::SpicePlayback(glib::LoopThread& thread)
    : thread_(thread), instance_(std::make_unique<Instance>()) {
  instance_->sin.base.sif = &kPlaybackInterface.base;
}

SpicePlayback::~SpicePlayback() = default;

SpiceBaseInstance* SpicePlayback::instance() { return &instance_->sin.base; }

void SpicePlayback::attached() {
  // 48 kHz is what Opus takes; spice-server sends raw PCM at the same rate to clients without it.
  spice_server_set_playback_rate(&instance_->sin, core::kAudioRate);
  attached_ = true;
}

void SpicePlayback::detach() {
  stop_on_thread();
  attached_ = false;
}

void SpicePlayback::play(const core::AudioChunk& chunk) {
  thread_.post([this, chunk] { play_on_thread(chunk); });
}

void SpicePlayback::stop() {
  thread_.post([this] { stop_on_thread(); });
}

PlaybackStats SpicePlayback::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void SpicePlayback::play_on_thread(const core::AudioChunk& chunk) {
  if (!attached_) return;
  if (!started_) {
    {
      std::lock_guard lock(stats_mutex_);
      stats_.playing = true;
    }
    spice_server_playback_start(&instance_->sin);
    started_ = true;
  }
  queued_.insert(queued_.end(), chunk.samples.begin(), chunk.samples.end());
  uint64_t sent = 0;
  while (!queued_.empty()) {
    if (!frame_) {
      spice_server_playback_get_buffer(&instance_->sin, &frame_, &frame_samples_);
      frame_filled_ = 0;
      if (!frame_ || frame_samples_ == 0) {  // no client, or every frame is on its way
        frame_ = nullptr;
        break;
      }
    }
    const uint32_t n = std::min<uint32_t>(frame_samples_ - frame_filled_, uint32_t(queued_.size() / 2));
    for (uint32_t i = 0; i < n; ++i)
      frame_[frame_filled_ + i] = uint32_t(uint16_t(queued_[2 * i])) | uint32_t(uint16_t(queued_[2 * i + 1])) << 16;
    frame_filled_ += n;
    queued_.erase(queued_.begin(), queued_.begin() + ptrdiff_t(n) * 2);
    if (frame_filled_ == frame_samples_) {
      spice_server_playback_put_samples(&instance_->sin, frame_);
      frame_ = nullptr;
      ++sent;
    }
  }
  uint64_t dropped = 0;
  if (queued_.size() > size_t(kMaxQueuedFrames) * 2) {
    const size_t excess = queued_.size() - size_t(kMaxQueuedFrames) * 2;
    queued_.erase(queued_.begin(), queued_.begin() + ptrdiff_t(excess));
    dropped = excess / (core::kAudioChunkFrames * 2);
  }
  std::lock_guard lock(stats_mutex_);
  ++stats_.chunks;
  stats_.frames_sent += sent;
  stats_.chunks_dropped += dropped;
  stats_.playing = true;
}

void SpicePlayback::stop_on_thread() {
  {
    // Before the clients are told (as SpiceRecord does): one that saw the stop finds the stats saying so.
    std::lock_guard lock(stats_mutex_);
    stats_.playing = false;
  }
  queued_.clear();
  if (frame_) {  // a lent frame goes back, its rest silent
    std::fill(frame_ + frame_filled_, frame_ + frame_samples_, 0u);
    spice_server_playback_put_samples(&instance_->sin, frame_);
    frame_ = nullptr;
  }
  if (started_ && attached_) spice_server_playback_stop(&instance_->sin);
  started_ = false;
}

}  // namespace vdistream::spice
