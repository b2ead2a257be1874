#include "encode/audio/audio_pipeline.hpp"

namespace vdistream::encode {

AudioPipeline::AudioPipeline(const std::string& name, AudioPipelineSinks sinks)
    : log_(name), sinks_(std::move(sinks)), converter_([this](const core::AudioChunk& c) { on_chunk(c); }) {}

void AudioPipeline::push(const core::AudioPacket& packet) {
  if (playing_ && *playing_ != packet.stream) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.other_stream_packets;
    return;
  }
  if (!playing_) {
    playing_ = packet.stream;
    // A guest's beeps start and stop one stream again and again: said once, then only at debug.
    if (logged_stream_ != packet.stream) log_.info("audio: playing stream {} ({})", packet.stream, packet.format.describe());
    else log_.debug("audio: playing stream {} again", packet.stream);
    logged_stream_ = packet.stream;
  }
  const core::Status converted = converter_.push(packet);
  std::lock_guard lock(stats_mutex_);
  ++stats_.packets;
  stats_.playing = true;
  if (!converted) {
    if (stats_.refused++ == 0) log_.warn("audio: {}", converted.error());
    stats_.last_error = converted.error();
  }
}

void AudioPipeline::stop_stream(uint64_t stream) {
  if (!playing_ || *playing_ != stream) return;
  converter_.flush();
  playing_.reset();
  if (sinks_.on_opus && opus_) {
    const core::AudioChunk silence{};
    for (int i = 0; i < kSilenceTailChunks; ++i) encode(silence);
  }
  if (sinks_.on_stop) sinks_.on_stop();
  std::lock_guard lock(stats_mutex_);
  stats_.playing = false;
}

void AudioPipeline::on_chunk(const core::AudioChunk& chunk) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.chunks;
  }
  if (sinks_.on_pcm) sinks_.on_pcm(chunk);
  encode(chunk);
}

void AudioPipeline::encode(const core::AudioChunk& chunk) {
  if (!sinks_.on_opus || opus_failed_) return;
  if (!opus_) {
    auto encoder = OpusAudioEncoder::create();
    if (!encoder) {
      opus_failed_ = true;
      log_.error("audio: no Opus encoder, browsers get no sound: {}", encoder.error());
      std::lock_guard lock(stats_mutex_);
      stats_.last_error = encoder.error();
      return;
    }
    opus_ = std::move(*encoder);
  }
  auto packet = opus_->encode(chunk, opus_sequence_++);
  {
    std::lock_guard lock(stats_mutex_);
    if (!packet) {
      ++stats_.refused;
      stats_.last_error = packet.error();
      return;
    }
    ++stats_.opus_packets;
    stats_.opus_bytes += (*packet)->data.size();
  }
  sinks_.on_opus(*packet);
}

AudioPipelineStats AudioPipeline::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace vdistream::encode
