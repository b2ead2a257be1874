#include "encode/audio/audio_converter.hpp"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>
}

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "encode/ffmpeg_hw_session.hpp"  // av_error_string

namespace vdistream::encode {

int pcm_sample_format(const core::AudioFormat& f) {
  if (f.is_float) return AV_SAMPLE_FMT_FLT;
  switch (f.bits) {
    case 8: return AV_SAMPLE_FMT_U8;  // flipped to unsigned when signed
    case 16: return AV_SAMPLE_FMT_S16;
    default: return AV_SAMPLE_FMT_S32;
  }
}

bool pcm_needs_rewrite(const core::AudioFormat& f) {
  return (f.big_endian && f.bits > 8) || (!f.is_float && (f.bits == 8) == f.is_signed);
}

void pcm_rewrite(const core::AudioFormat& f, const uint8_t* in, size_t size, std::vector<uint8_t>& out) {
  out.assign(in, in + size);
  const size_t width = f.bits / 8;
  for (size_t i = 0; i + width <= size; i += width) {
    uint8_t* s = out.data() + i;
    if (f.big_endian && width > 1) std::reverse(s, s + width);
    if (!f.is_float && (f.bits == 8) == f.is_signed) s[width - 1] ^= 0x80;  // flip the sign bit (little-endian top byte)
  }
}

void AudioConverter::SwrFree::operator()(SwrContext* ctx) const { swr_free(&ctx); }

AudioConverter::AudioConverter(ChunkCallback on_chunk) : on_chunk_(std::move(on_chunk)) {}
AudioConverter::~AudioConverter() = default;

core::Status AudioConverter::reconfigure(const core::AudioFormat& format) {
  if (auto ok = format.check(); !ok) return ok;
  AVChannelLayout in_layout{}, out_layout{};
  av_channel_layout_default(&in_layout, int(format.channels));
  av_channel_layout_default(&out_layout, int(core::kAudioChannels));
  SwrContext* ctx = nullptr;
  int err = swr_alloc_set_opts2(&ctx, &out_layout, AV_SAMPLE_FMT_S16, int(core::kAudioRate), &in_layout,
                                AVSampleFormat(pcm_sample_format(format)), int(format.rate), 0, nullptr);
  av_channel_layout_uninit(&in_layout);
  av_channel_layout_uninit(&out_layout);
  std::unique_ptr<SwrContext, SwrFree> swr(ctx);
  // A mono guest plays at its own level in both ears (libswresample's default is the centre
  // speaker's −3 dB).
  static const double kMonoToStereo[2] = {1.0, 1.0};  // out × in
  if (err >= 0 && format.channels == 1) err = swr_set_matrix(swr.get(), kMonoToStereo, 1);
  if (err >= 0) err = swr_init(swr.get());
  if (err < 0) return core::Error{fmt::format("cannot convert {} to 48 kHz stereo: {}", format.describe(), av_error_string(err))};
  swr_ = std::move(swr);
  format_ = format;
  return {};
}

core::Status AudioConverter::push(const core::AudioPacket& packet) {
  if (!swr_ || !(packet.format == format_)) {
    flush();
    if (auto ok = reconfigure(packet.format); !ok) return ok;
  }
  const uint8_t* in = packet.data;
  if (pcm_needs_rewrite(format_)) {
    pcm_rewrite(format_, packet.data, packet.size, scratch_);
    in = scratch_.data();
  }
  const int in_frames = int(packet.size / format_.bytes_per_frame);
  const int capacity = swr_get_out_samples(swr_.get(), in_frames);
  if (capacity < 0) return core::Error{"libswresample cannot size its output"};
  converted_.resize(size_t(capacity) * core::kAudioChannels);
  auto* out = reinterpret_cast<uint8_t*>(converted_.data());
  const int frames = swr_convert(swr_.get(), &out, capacity, &in, in_frames);
  if (frames < 0) return core::Error{fmt::format("converting {}: {}", format_.describe(), av_error_string(frames))};
  // The guest's mixer: a gain per output channel.
  const double gains[2] = {packet.volume.gain(0), packet.volume.gain(format_.channels > 1 ? 1 : 0)};
  if (gains[0] != 1 || gains[1] != 1)
    for (size_t i = 0; i < size_t(frames) * core::kAudioChannels; ++i)
      converted_[i] = int16_t(std::lround(converted_[i] * gains[i % 2]));
  if (pending_.empty()) pending_ns_ = packet.captured_ns;
  pending_.insert(pending_.end(), converted_.begin(), converted_.begin() + ptrdiff_t(frames) * core::kAudioChannels);
  emit_chunks();
  return {};
}

void AudioConverter::emit_chunks() {
  constexpr size_t kChunkSamples = core::kAudioChunkFrames * core::kAudioChannels;
  size_t used = 0;
  while (pending_.size() - used >= kChunkSamples) {
    core::AudioChunk chunk;
    std::copy_n(pending_.begin() + ptrdiff_t(used), kChunkSamples, chunk.samples.begin());
    chunk.sequence = sequence_++;
    chunk.captured_ns = pending_ns_;
    used += kChunkSamples;
    if (on_chunk_) on_chunk_(chunk);
  }
  pending_.erase(pending_.begin(), pending_.begin() + ptrdiff_t(used));
}

void AudioConverter::flush() {
  if (!pending_.empty()) {
    pending_.resize(core::kAudioChunkFrames * core::kAudioChannels, 0);
    emit_chunks();
  }
  pending_.clear();
  swr_.reset();
}

}  // namespace vdistream::encode
