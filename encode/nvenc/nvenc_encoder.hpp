// NVENC through FFmpeg (h264_nvenc / hevc_nvenc) with CUDA frames as input. A CPU-mappable
// (linear) buffer is uploaded with cuMemcpy2D straight from its mapping (no CPU-side copy; the
// upload is counted as a full-frame copy since it moves every pixel across the bus). Tiled
// dma-bufs need the EGL → GL → CUDA interop, which this version does not have yet: such a
// frame fails with a reason and the fallback moves on.
#pragma once

#include <atomic>
#include <memory>

#include "encode/encoder.hpp"
#include "encode/ffmpeg_hw_session.hpp"
#include "encode/hardware_options.hpp"
#include "encode/nvenc/cuda_runtime.hpp"

struct AVBufferRef;
struct AVFrame;

namespace vdistream::encode {

FfmpegEncoderSettings nvenc_settings(const EncoderConfig& config);

class NvencEncoder final : public Encoder {
 public:
  static core::Result<std::unique_ptr<Encoder>> create(const EncoderConfig& config, const HardwareOptions& hw);
  ~NvencEncoder() override;

  std::string name() const override;
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override;
  void request_keyframe() override { keyframe_requested_ = true; }
  void set_bitrate(uint32_t bps) override { bitrate_ = bps; }
  uint32_t bitrate() const override { return bitrate_; }
  EncoderCounters counters() const override { return counters_; }

 private:
  NvencEncoder(const EncoderConfig& config, int device);
  core::Status open(int32_t width, int32_t height);
  void close();

  EncoderConfig config_;
  int device_ = 0;
  std::unique_ptr<CudaRuntime> runtime_;
  std::atomic<bool> keyframe_requested_{true};
  std::atomic<uint32_t> bitrate_;
  uint32_t applied_bitrate_ = 0;
  AVBufferRef* cuda_device_ = nullptr;
  AVBufferRef* cuda_frames_ = nullptr;
  AVFrame* upload_ = nullptr;
  std::unique_ptr<FfmpegHwSession> session_;
  int32_t width_ = 0, height_ = 0;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
