#include "encode/audio/opus_encoder.hpp"

#include <fmt/format.h>
#include <opus.h>


namespace vdistream::encode {

namespace {
constexpr size_t kMaxPacketBytes = 4000;  // libopus's recommendation for one packet
}

core::Result<std::unique_ptr<OpusAudioEncoder>> OpusAudioEncoder::create(int bitrate) {
  int err = OPUS_OK;
  ::OpusEncoder* encoder = opus_encoder_create(int(core::kAudioRate), int(core::kAudioChannels),
                                               OPUS_APPLICATION_RESTRICTED_LOWDELAY, &err);
  if (!encoder || err != OPUS_OK) return core::Error{fmt::format("opus_encoder_create: {}", opus_strerror(err))};
  std::unique_ptr<OpusAudioEncoder> self(new OpusAudioEncoder(encoder));
  if (int e = opus_encoder_ctl(encoder, OPUS_SET_BITRATE(bitrate)); e != OPUS_OK)
    return core::Error{fmt::format("Opus bitrate {}: {}", bitrate, opus_strerror(e))};
  return self;
}

OpusAudioEncoder::~OpusAudioEncoder() { opus_encoder_destroy(encoder_); }

core::Result<core::EncodedAudioPtr> OpusAudioEncoder::encode(const core::AudioChunk& chunk, uint64_t sequence) {
  auto packet = std::make_shared<core::EncodedAudio>();
  packet->data.resize(kMaxPacketBytes);
  const opus_int32 n = opus_encode(encoder_, chunk.samples.data(), int(core::kAudioChunkFrames), packet->data.data(),
                                   opus_int32(packet->data.size()));
  if (n < 0) return core::Error{fmt::format("opus_encode: {}", opus_strerror(n))};
  packet->data.resize(size_t(n));
  packet->sequence = sequence;
  packet->captured_ns = chunk.captured_ns;
  return core::EncodedAudioPtr(std::move(packet));
}

}  // namespace vdistream::encode
