// oneVPL (Intel Quick Sync) through libvpl's API 2.8, which has no surface import: the dma-buf
// becomes a VA surface (vaCreateSurfaces with a DRM PRIME 2 descriptor) on a VA display we share
// with oneVPL, and reaches it through our external frame allocator (MemId -> VASurfaceID). VPP
// converts RGB4 to NV12 on the GPU; the encoder runs with the low-latency parameters.
#pragma once

#include <vpl/mfx.h>

#include <atomic>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "encode/encoder.hpp"
#include "encode/hardware_options.hpp"
#include "encode/vaapi/va_display.hpp"

namespace vdistream::encode {

class OneVplEncoder final : public Encoder {
 public:
  static core::Result<std::unique_ptr<Encoder>> create(const EncoderConfig& config, const HardwareOptions& hw);
  ~OneVplEncoder() override;

  std::string name() const override;
  core::Result<std::vector<core::EncodedFrame>> encode(const core::Frame& frame) override;
  void request_keyframe() override { keyframe_requested_ = true; }
  void set_bitrate(uint32_t bps) override { bitrate_ = bps; }
  uint32_t bitrate() const override { return bitrate_; }
  EncoderCounters counters() const override { return counters_; }

  // The frame allocator's callbacks (C ABI); `pthis` is the encoder.
  static mfxStatus alloc_frames(mfxHDL pthis, mfxFrameAllocRequest* request, mfxFrameAllocResponse* response);
  static mfxStatus free_frames(mfxHDL pthis, mfxFrameAllocResponse* response);
  static mfxStatus get_handle(mfxHDL pthis, mfxMemId mid, mfxHDL* handle);

 private:
  explicit OneVplEncoder(const EncoderConfig& config);
  core::Status open(int32_t width, int32_t height, uint32_t drm_fourcc);
  void close();
  core::Result<VASurfaceID*> import(const core::FrameBufferPtr& buffer);

  EncoderConfig config_;
  std::unique_ptr<VaDisplay> display_;
  mfxLoader loader_ = nullptr;
  mfxSession session_ = nullptr;
  mfxFrameAllocator allocator_{};
  std::string implementation_;
  std::atomic<bool> keyframe_requested_{true};
  std::atomic<uint32_t> bitrate_;
  uint32_t applied_bitrate_ = 0;
  bool opened_ = false;
  int32_t width_ = 0, height_ = 0;
  uint32_t fourcc_ = 0;
  mfxFrameInfo vpp_in_{}, vpp_out_{};

  // VA surfaces: stable addresses, since their addresses are oneVPL's MemIds.
  std::deque<VASurfaceID> surfaces_;
  std::vector<mfxMemId> nv12_pool_;  // VPP output = encoder input
  std::vector<mfxFrameSurface1> nv12_surfaces_;
  struct Import {
    core::FrameBufferPtr buffer;
    VASurfaceID* surface = nullptr;
  };
  std::unordered_map<core::BufferId, Import, core::BufferIdHash> imports_;
  std::vector<uint8_t> bitstream_;
  EncoderCounters counters_;
};

}  // namespace vdistream::encode
