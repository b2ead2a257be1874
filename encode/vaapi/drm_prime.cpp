#include "encode/vaapi/drm_prime.hpp"

namespace vdistream::encode {

AVDRMFrameDescriptor drm_frame_descriptor(const DmaBufLayout& layout) {
  AVDRMFrameDescriptor d{};
  d.nb_objects = layout.object_count;
  for (int i = 0; i < layout.object_count; ++i) {
    d.objects[i].fd = layout.objects[i].fd;
    d.objects[i].size = size_t(layout.objects[i].size);
    d.objects[i].format_modifier = layout.objects[i].modifier;
  }
  d.nb_layers = 1;
  d.layers[0].format = layout.drm_fourcc;
  d.layers[0].nb_planes = layout.plane_count;
  for (int i = 0; i < layout.plane_count; ++i) {
    d.layers[0].planes[i].object_index = layout.planes[i].object_index;
    d.layers[0].planes[i].offset = ptrdiff_t(layout.planes[i].offset);
    d.layers[0].planes[i].pitch = ptrdiff_t(layout.planes[i].pitch);
  }
  return d;
}

core::Result<AVDRMFrameDescriptor> drm_frame_descriptor(const core::FrameBuffer& buffer) {
  auto layout = describe_dmabuf(buffer);
  if (!layout) return core::Error{layout.error()};
  return drm_frame_descriptor(*layout);
}

}  // namespace vdistream::encode
