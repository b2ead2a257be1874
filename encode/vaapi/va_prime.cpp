#include "encode/vaapi/va_prime.hpp"

#include <drm_fourcc.h>

#include "core/pixel_format.hpp"

namespace vdistream::encode {

core::Result<VaSurfaceFormat> va_surface_format(uint32_t drm_fourcc) {
  switch (drm_fourcc) {
    case DRM_FORMAT_XRGB8888: return VaSurfaceFormat{VA_FOURCC_BGRX, VA_RT_FORMAT_RGB32};
    case DRM_FORMAT_ARGB8888: return VaSurfaceFormat{VA_FOURCC_BGRA, VA_RT_FORMAT_RGB32};
    case DRM_FORMAT_XBGR8888: return VaSurfaceFormat{VA_FOURCC_RGBX, VA_RT_FORMAT_RGB32};
    case DRM_FORMAT_ABGR8888: return VaSurfaceFormat{VA_FOURCC_RGBA, VA_RT_FORMAT_RGB32};
    case DRM_FORMAT_NV12: return VaSurfaceFormat{VA_FOURCC_NV12, VA_RT_FORMAT_YUV420};
    case DRM_FORMAT_P010: return VaSurfaceFormat{VA_FOURCC_P010, VA_RT_FORMAT_YUV420_10};
    default: break;
  }
  return core::Error{"no VA surface format for " + core::PixelFormat{drm_fourcc, 0}.name()};
}

core::Result<VADRMPRIMESurfaceDescriptor> va_prime_descriptor(const DmaBufLayout& layout) {
  auto format = va_surface_format(layout.drm_fourcc);
  if (!format) return core::Error{format.error()};
  VADRMPRIMESurfaceDescriptor d{};
  d.fourcc = format->va_fourcc;
  d.width = uint32_t(layout.width);
  d.height = uint32_t(layout.height);
  d.num_objects = uint32_t(layout.object_count);
  for (int i = 0; i < layout.object_count; ++i) {
    if (layout.objects[i].size > UINT32_MAX)
      return core::Error{"dma-buf object of " + std::to_string(layout.objects[i].size) + " bytes is too large for VA"};
    d.objects[i].fd = layout.objects[i].fd;
    d.objects[i].size = uint32_t(layout.objects[i].size);
    d.objects[i].drm_format_modifier = layout.objects[i].modifier;
  }
  // One layer holding every plane (VA_EXPORT_SURFACE_COMPOSED_LAYERS style), as drivers accept.
  d.num_layers = 1;
  d.layers[0].drm_format = layout.drm_fourcc;
  d.layers[0].num_planes = uint32_t(layout.plane_count);
  for (int i = 0; i < layout.plane_count; ++i) {
    d.layers[0].object_index[i] = uint32_t(layout.planes[i].object_index);
    d.layers[0].offset[i] = layout.planes[i].offset;
    d.layers[0].pitch[i] = layout.planes[i].pitch;
  }
  return d;
}

}  // namespace vdistream::encode
