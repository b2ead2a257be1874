// Turns a VM's PCM, in whatever format its stream has, into the sinks' chunks: 10 ms of 48 kHz
// stereo s16 with the guest's volume applied. libswresample resamples and remixes; a format
// change (a new stream) starts a new resampler.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/audio.hpp"
#include "core/status.hpp"

struct SwrContext;

namespace vdistream::encode {

// libswresample reads and writes host-order u8, s16, s32 and float; a format's own bytes may be
// big-endian or of the other signedness. pcm_rewrite turns one into the other (both ways: it
// swaps bytes and flips the sign bit) when pcm_needs_rewrite says so.
int pcm_sample_format(const core::AudioFormat& f);  // the AVSampleFormat libswresample handles
bool pcm_needs_rewrite(const core::AudioFormat& f);
void pcm_rewrite(const core::AudioFormat& f, const uint8_t* in, size_t size, std::vector<uint8_t>& out);

class AudioConverter {
 public:
  using ChunkCallback = std::function<void(const core::AudioChunk&)>;
  explicit AudioConverter(ChunkCallback on_chunk);
  ~AudioConverter();
  AudioConverter(const AudioConverter&) = delete;
  AudioConverter& operator=(const AudioConverter&) = delete;

  // Converts the packet and hands on every whole chunk; refuses a format it cannot read.
  core::Status push(const core::AudioPacket& packet);
  // The stream stopped: the partial chunk is padded with silence and handed on, the resampler's
  // delay line is dropped.
  void flush();
  uint64_t chunks() const { return sequence_; }

 private:
  core::Status reconfigure(const core::AudioFormat& format);
  void emit_chunks();

  ChunkCallback on_chunk_;
  struct SwrFree {
    void operator()(SwrContext* ctx) const;
  };
  std::unique_ptr<SwrContext, SwrFree> swr_;
  core::AudioFormat format_;
  std::vector<uint8_t> scratch_;   // input rewritten for libswresample (unsigned or big-endian words)
  std::vector<int16_t> pending_;   // converted, not yet a whole chunk (interleaved stereo)
  std::vector<int16_t> converted_;
  int64_t pending_ns_ = 0;         // arrival of the packet that holds pending_'s first sample
  uint64_t sequence_ = 0;
};

}  // namespace vdistream::encode
