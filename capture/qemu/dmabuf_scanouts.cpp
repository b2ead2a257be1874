#include "capture/qemu/dmabuf_scanouts.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "core/pixel_format.hpp"

namespace vdistream::capture::qemu {

namespace {

// Where the visible rectangle starts in plane i: the crop moves each plane's offset by its own
// rows and bytes (chroma planes of NV12/P010 are half height, pairs of half width).
core::Result<uint64_t> cropped_offset(const core::PixelFormat& format, int i, uint32_t offset, uint32_t stride,
                                      uint32_t x, uint32_t y) {
  const bool subsampled = i > 0 && (format.fourcc == DRM_FORMAT_NV12 || format.fourcc == DRM_FORMAT_P010);
  if (subsampled && (x % 2 || y % 2))
    return core::Error{fmt::format("crop origin {},{} is odd: {} chroma cannot start there", x, y, format.name())};
  const uint64_t row = subsampled ? y / 2 : y;
  // x pixels of luma are x × bpp bytes; x / 2 chroma pairs of 2 × bpp bytes are as many.
  const uint64_t bytes = uint64_t(x) * uint64_t(format.bytes_per_pixel());
  return uint64_t(offset) + row * stride + bytes;
}

}  // namespace

core::Result<core::FrameBufferPtr> DmabufScanouts::import(DmabufScanout s) {
  const core::PixelFormat format{s.fourcc, s.modifier};
  if (s.planes < 1 || s.planes > core::FrameBuffer::kMaxPlanes)
    return core::Error{fmt::format("plane count {} is outside 1..{}", s.planes, core::FrameBuffer::kMaxPlanes)};
  if (!format.linear() && !accept_tiled_)
    return core::Error{fmt::format("modifier {} is tiled and no encoder of this build imports tiled buffers",
                                   core::modifier_name(s.modifier))};
  if (s.backing_width == 0 || s.backing_height == 0 || s.backing_width > uint32_t(core::FrameBuffer::kMaxDimension) ||
      s.backing_height > uint32_t(core::FrameBuffer::kMaxDimension))
    return core::Error{fmt::format("backing size {}x{} is outside 1..{} in each dimension", s.backing_width,
                                   s.backing_height, core::FrameBuffer::kMaxDimension)};
  if (uint64_t(s.x) + s.width > s.backing_width || uint64_t(s.y) + s.height > s.backing_height)
    return core::Error{fmt::format("visible rectangle {}x{}+{}+{} is not inside the {}x{} backing buffer", s.width,
                                   s.height, s.x, s.y, s.backing_width, s.backing_height)};
  const bool cropped = s.x != 0 || s.y != 0;
  if (cropped && !format.linear())
    return core::Error{fmt::format("a {} buffer cannot be cropped at {},{}: its layout is not rows of pixels",
                                   core::modifier_name(s.modifier), s.x, s.y)};
  if (cropped && !format.known()) return core::Error{fmt::format("pixel format: {}", format.name())};

  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  for (int i = 0; i < s.planes; ++i) {
    uint64_t offset = s.offsets[size_t(i)];
    if (cropped) {
      auto moved = cropped_offset(format, i, s.offsets[size_t(i)], s.strides[size_t(i)], s.x, s.y);
      if (!moved) return core::Error{moved.error()};
      offset = *moved;
    }
    if (offset > UINT32_MAX) return core::Error{fmt::format("plane {}: offset {} does not fit 32 bits", i, offset)};
    planes[size_t(i)] = core::Plane{std::move(s.fds[size_t(i)]), uint32_t(offset), s.strides[size_t(i)]};
  }

  // Every plane's file, not only plane 0's: planes may come from different buffers, and a cached
  // import is reused only when each of them is the same.
  std::array<core::BufferId, core::FrameBuffer::kMaxPlanes> ids{};
  for (int i = 0; i < s.planes; ++i) {
    struct stat st {};
    if (fstat(planes[size_t(i)].fd.get(), &st) != 0)
      return core::Error{fmt::format("plane {}: fstat of the dma-buf fd: {}", i, strerror(errno))};
    ids[size_t(i)] = {uint64_t(st.st_dev), uint64_t(st.st_ino)};
  }
  for (auto it = imports_.begin(); it != imports_.end(); ++it) {
    const core::FrameBuffer& b = **it;
    if (b.id() != ids[0]) continue;
    bool same = uint32_t(b.width()) == s.width && uint32_t(b.height()) == s.height && b.format() == format &&
                b.plane_count() == s.planes;
    for (int i = 0; same && i < s.planes; ++i) {
      struct stat st {};
      same = b.plane(i).offset == planes[size_t(i)].offset && b.plane(i).pitch == planes[size_t(i)].pitch &&
             fstat(b.plane(i).fd.get(), &st) == 0 && core::BufferId{uint64_t(st.st_dev), uint64_t(st.st_ino)} == ids[size_t(i)];
    }
    if (same) {
      imports_.splice(imports_.begin(), imports_, it);
      ++stats_.reused;
      return imports_.front();  // the fresh duplicate fds close here
    }
    imports_.erase(it);  // the same buffer with a new layout: import again
    break;
  }
  // FrameBuffer::create checks the descriptor (size, fourcc, plane count, pitch, every fd's
  // length) before any use.
  auto buffer = core::FrameBuffer::create(int32_t(s.width), int32_t(s.height), format, std::move(planes), s.planes);
  if (!buffer) return core::Error{buffer.error()};
  imports_.push_front(*buffer);
  while (imports_.size() > cache_) imports_.pop_back();
  ++stats_.imports;
  return buffer;
}

}  // namespace vdistream::capture::qemu
