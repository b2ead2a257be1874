// The software backend: libx264 through libavcodec, fed by damage-only libyuv conversion into
// persistent I420 planes.
#pragma once

#include <atomic>
#include <memory>

#include "encode/encoder.hpp"
#include "encode/software/i420_converter.hpp"

struct AVCodecContext;
struct AVFrame;
struct AVPacket;

namespace vdistream::encode {

class X264Encoder final : public Encoder {
 public:
  static core::Result<std::unique_ptr<Encoder>> create(const EncoderConfig& config);
  ~X264Encoder() override;

  std::string name() const override;
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override;
  void request_keyframe() override { keyframe_requested_ = true; }
  void set_bitrate(uint32_t bps) override { bitrate_ = bps; }
  uint32_t bitrate() const override { return bitrate_; }
  EncoderCounters counters() const override { return counters_; }

 private:
  explicit X264Encoder(const EncoderConfig& config);
  core::Status open(int32_t width, int32_t height);
  void close();
  void apply_bitrate();

  EncoderConfig config_;
  std::atomic<bool> keyframe_requested_{true};
  std::atomic<uint32_t> bitrate_;
  uint32_t applied_bitrate_ = 0;
  AVCodecContext* ctx_ = nullptr;
  AVFrame* picture_ = nullptr;  // persistent I420 planes, updated tile by tile
  AVPacket* packet_ = nullptr;
  int32_t width_ = 0, height_ = 0;  // source size (the coded size is rounded up to even)
  int64_t next_pts_ = 0;
  I420Converter converter_;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
