#include "encode/software/i420_converter.hpp"

#include <drm_fourcc.h>
#include <libyuv/convert.h>
#include <libyuv/convert_from_argb.h>

namespace vdistream::encode {

core::Result<uint64_t> I420Converter::convert(const core::FrameBuffer& buffer, const core::TileMask& changed,
                                              const I420Planes& out) {
  const size_t tiles = changed.count();
  if (tiles == 0) return uint64_t(0);
  auto mapped = mappings_.get(buffer);
  if (!mapped) return core::Error{mapped.error()};
  const core::MappedBuffer& m = **mapped;

  // DRM XRGB8888 is B,G,R,X in memory: libyuv calls that "ARGB". XBGR8888 is libyuv's "ABGR".
  const bool bgrx = buffer.format().fourcc == DRM_FORMAT_XRGB8888 || buffer.format().fourcc == DRM_FORMAT_ARGB8888;
  const auto to_i420 = range_ == Range::Full ? (bgrx ? libyuv::ARGBToJ420 : libyuv::ABGRToJ420)
                                             : (bgrx ? libyuv::ARGBToI420 : libyuv::ABGRToI420);

  core::MappedBuffer::CpuAccess access(m);
  for (const core::Rect& r : changed.runs()) {
    const uint8_t* src = m.data() + size_t(r.y) * m.pitch() + size_t(r.x) * 4;
    to_i420(src, int(m.pitch()), out.y + size_t(r.y) * out.y_stride + r.x, out.y_stride,
            out.u + size_t(r.y / 2) * out.u_stride + r.x / 2, out.u_stride,
            out.v + size_t(r.y / 2) * out.v_stride + r.x / 2, out.v_stride, r.width, r.height);
  }
  return uint64_t(tiles);
}

}  // namespace vdistream::encode
