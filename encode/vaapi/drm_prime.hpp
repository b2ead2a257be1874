// The dma-buf as FFmpeg's AV_PIX_FMT_DRM_PRIME frame data: one layer in the buffer's own DRM
// format (FFmpeg's VAAPI mapping accepts XRGB/ARGB/XBGR/ABGR8888, NV12 in one layer, P010).
#pragma once

extern "C" {
#include <libavutil/hwcontext_drm.h>
}

#include "core/frame_buffer.hpp"
#include "core/status.hpp"
#include "encode/vaapi/dmabuf_layout.hpp"

namespace vdistream::encode {

AVDRMFrameDescriptor drm_frame_descriptor(const DmaBufLayout& layout);
core::Result<AVDRMFrameDescriptor> drm_frame_descriptor(const core::FrameBuffer& buffer);

}  // namespace vdistream::encode
