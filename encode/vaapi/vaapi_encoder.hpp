// VAAPI through FFmpeg (Intel, AMD): the dma-buf is wrapped as an AV_PIX_FMT_DRM_PRIME frame,
// mapped to a VA surface (no copy), converted to NV12 by VAAPI video processing (scale_vaapi)
// into the encoder's pool, and encoded by h264_vaapi / hevc_vaapi. Imports are cached per
// buffer identity, so a desktop's two or three scanout buffers are imported once each.
#pragma once

#include <atomic>
#include <memory>
#include <unordered_map>

#include "encode/encoder.hpp"
#include "encode/ffmpeg_hw_session.hpp"
#include "encode/hardware_options.hpp"

struct AVBufferRef;
struct AVFilterGraph;
struct AVFilterContext;
struct AVFrame;

namespace vdistream::encode {

// What h264_vaapi / hevc_vaapi are opened with.
FfmpegEncoderSettings vaapi_settings(const EncoderConfig& config, bool low_power);

class VaapiEncoder final : public Encoder {
 public:
  static core::Result<std::unique_ptr<Encoder>> create(const EncoderConfig& config, const HardwareOptions& hw);
  ~VaapiEncoder() override;

  std::string name() const override;
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override;
  void request_keyframe() override { keyframe_requested_ = true; }
  void set_bitrate(uint32_t bps) override { bitrate_ = bps; }
  uint32_t bitrate() const override { return bitrate_; }
  EncoderCounters counters() const override { return counters_; }

 private:
  VaapiEncoder(const EncoderConfig& config, std::string node);
  core::Status open_devices();
  core::Status open_pipeline(int32_t width, int32_t height, uint32_t drm_fourcc);
  void close_pipeline();
  core::Result<AVFrame*> import(const core::FrameBufferPtr& buffer);

  EncoderConfig config_;
  std::string node_;
  bool low_power_ = false;
  std::atomic<bool> keyframe_requested_{true};
  std::atomic<uint32_t> bitrate_;
  uint32_t applied_bitrate_ = 0;
  AVBufferRef* drm_device_ = nullptr;
  AVBufferRef* va_device_ = nullptr;
  AVBufferRef* drm_frames_ = nullptr;
  AVBufferRef* va_frames_ = nullptr;
  AVFilterGraph* graph_ = nullptr;
  AVFilterContext* source_ = nullptr;
  AVFilterContext* sink_ = nullptr;
  AVFrame* nv12_ = nullptr;
  std::unique_ptr<FfmpegHwSession> session_;
  int32_t width_ = 0, height_ = 0;
  uint32_t fourcc_ = 0;

  struct Import {
    core::FrameBufferPtr buffer;  // keeps the fds the descriptor names open
    AVFrame* drm = nullptr;
    AVFrame* va = nullptr;
  };
  std::unordered_map<core::BufferId, Import, core::BufferIdHash> imports_;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
