// The dma-buf as libva's VADRMPRIMESurfaceDescriptor, for vaCreateSurfaces with
// VA_SURFACE_ATTRIB_MEM_TYPE_DRM_PRIME_2 (the oneVPL path creates its input surfaces this way).
#pragma once

#include <va/va.h>
#include <va/va_drmcommon.h>

#include "core/status.hpp"
#include "encode/vaapi/dmabuf_layout.hpp"

namespace vdistream::encode {

struct VaSurfaceFormat {
  uint32_t va_fourcc = 0;  // VA_FOURCC_BGRX etc.: VA names bytes in memory order, DRM in a little-endian word
  uint32_t rt_format = 0;  // VA_RT_FORMAT_RGB32, _YUV420, _YUV420_10
};

core::Result<VaSurfaceFormat> va_surface_format(uint32_t drm_fourcc);
core::Result<VADRMPRIMESurfaceDescriptor> va_prime_descriptor(const DmaBufLayout& layout);

}  // namespace vdistream::encode
