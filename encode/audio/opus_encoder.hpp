// One Opus encoder per desktop: its 10 ms chunks become Opus packets that every WebRTC viewer
// of the desktop shares (libopus, restricted low-delay mode: no look-ahead beyond 2.5 ms).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/audio.hpp"
#include "core/status.hpp"

struct OpusEncoder;

namespace vdistream::encode {

class OpusAudioEncoder {
 public:
  static constexpr int kDefaultBitrate = 96000;  // stereo, bits per second
  static core::Result<std::unique_ptr<OpusAudioEncoder>> create(int bitrate = kDefaultBitrate);
  ~OpusAudioEncoder();
  OpusAudioEncoder(const OpusAudioEncoder&) = delete;
  OpusAudioEncoder& operator=(const OpusAudioEncoder&) = delete;

  // `sequence` numbers the packet (consecutive packets play back to back).
  core::Result<core::EncodedAudioPtr> encode(const core::AudioChunk& chunk, uint64_t sequence);

 private:
  explicit OpusAudioEncoder(::OpusEncoder* encoder) : encoder_(encoder) {}
  ::OpusEncoder* encoder_;
};

}  // namespace vdistream::encode
