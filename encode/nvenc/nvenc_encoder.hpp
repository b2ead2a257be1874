// NVENC through FFmpeg (h264_nvenc / hevc_nvenc) with CUDA frames as input. A dma-buf goes
// through EGL into a GL texture registered with CUDA and is copied on the GPU (EglCudaImporter);
// a memfd, or a linear dma-buf the EGL path refuses, is uploaded with cuMemcpy2D straight from
// its mapping (counted as a full-frame copy: every pixel crosses the bus from host memory).
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

class EglCudaImporter;

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
  core::Status upload_from_host(const core::FrameBuffer& fb);
  // The EGL path for dma-bufs: created at the first one; nullptr with the reason when it cannot be.
  EglCudaImporter* egl_importer();

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
  std::unique_ptr<EglCudaImporter> egl_;
  bool egl_tried_ = false;
  std::string egl_unavailable_;
  int32_t width_ = 0, height_ = 0;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
