// The software backend: libx264, fed by damage-only libyuv conversion into persistent I420
// planes. x264 is driven through its own API rather than libavcodec's wrapper because only the
// API hands it the damage: every macroblock outside it is flagged constant (mb_info), so x264
// skips it without analysis (FFmpeg 5.1's wrapper cannot pass mb_info; 6.1 added it).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "encode/encoder.hpp"
#include "encode/software/i420_converter.hpp"

struct x264_t;
struct x264_param_t;

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
  void set_rate_control(x264_param_t& p, uint32_t bps) const;
  // x264 takes ownership (frees it after the frame): 1 = unchanged since the last encoded frame.
  static uint8_t* constant_macroblocks(const core::TileMask& changed);

  EncoderConfig config_;
  std::atomic<bool> keyframe_requested_{true};
  std::atomic<uint32_t> bitrate_;
  uint32_t applied_bitrate_ = 0;
  x264_t* x264_ = nullptr;
  std::unique_ptr<x264_param_t> param_;
  struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, FreeDeleter> planes_;  // persistent I420 picture, updated tile by tile
  I420Planes picture_{};
  int32_t width_ = 0, height_ = 0;  // source size (the coded size is rounded up to even)
  int64_t next_pts_ = 0;
  I420Converter converter_;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
