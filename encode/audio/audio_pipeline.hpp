// A desktop's sound from its source to its sinks: the VM's PCM is converted into 10 ms chunks
// (AudioConverter) for the PCM sinks (SPICE playback), and encoded once into Opus for the
// encoded sinks (every WebRTC viewer shares the packets). It runs on the source's thread (a
// resample and one 10 ms Opus frame per chunk), not on a thread of its own.
//
// One stream plays at a time: QEMU gives each sound device's voice a stream of its own, and the
// first one that plays owns the desktop's sound until it stops; the others are counted, not mixed.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/audio.hpp"
#include "core/log.hpp"
#include "encode/audio/audio_converter.hpp"
#include "encode/audio/opus_encoder.hpp"

namespace vdistream::encode {

struct AudioPipelineSinks {
  std::function<void(const core::AudioChunk&)> on_pcm;          // optional
  std::function<void(const core::EncodedAudioPtr&)> on_opus;    // optional: no Opus encoder without it
  std::function<void()> on_stop;                                // the stream stopped (optional)
};

struct AudioPipelineStats {
  uint64_t packets = 0, chunks = 0, opus_packets = 0, opus_bytes = 0;
  uint64_t other_stream_packets = 0;  // from a stream that was not the one playing
  uint64_t refused = 0;
  std::string last_error;
  bool playing = false;
};

class AudioPipeline {
 public:
  // After a stream ends, browsers get this much digital silence: a receiver that simply stops
  // getting packets conceals the gap by repeating the last sound for a while.
  static constexpr int kSilenceTailChunks = 20;  // 200 ms

  AudioPipeline(const std::string& name, AudioPipelineSinks sinks);
  void push(const core::AudioPacket& packet);  // the source's thread
  void stop_stream(uint64_t stream);           // the source's thread
  AudioPipelineStats stats() const;

 private:
  void on_chunk(const core::AudioChunk& chunk);
  void encode(const core::AudioChunk& chunk);


  core::Logger log_;
  AudioPipelineSinks sinks_;
  AudioConverter converter_;
  std::unique_ptr<OpusAudioEncoder> opus_;
  bool opus_failed_ = false;
  uint64_t opus_sequence_ = 0;  // consecutive across streams: a gap in time, not in numbers
  std::optional<uint64_t> playing_;  // the stream that owns the sound
  std::optional<uint64_t> logged_stream_;  // the last stream whose start was logged at info
  mutable std::mutex stats_mutex_;
  AudioPipelineStats stats_;
};

}  // namespace vdistream::encode
