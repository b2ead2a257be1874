#include "core/frame_buffer.hpp"

#include <drm_fourcc.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace vdistream::core {

namespace {

struct FdInfo {
  BufferId id;
  BackingKind backing = BackingKind::Memory;
  uint64_t size = 0;
};

Result<FdInfo> inspect_fd(int fd, int plane) {
  struct stat st {};
  if (fd < 0) return Error{fmt::format("plane {}: no file descriptor", plane)};
  if (fstat(fd, &st) != 0) return Error{fmt::format("plane {}: fstat(fd {}) failed: {}", plane, fd, strerror(errno))};
  FdInfo info;
  info.id = {uint64_t(st.st_dev), uint64_t(st.st_ino)};
  if (S_ISREG(st.st_mode)) {
    info.size = uint64_t(st.st_size);
  } else {
    // dma-bufs report st_size 0; their size is where SEEK_END lands.
    off_t end = lseek(fd, 0, SEEK_END);
    if (end < 0)
      return Error{fmt::format("plane {}: fd {} is neither a memfd nor a dma-buf (lseek: {})", plane, fd, strerror(errno))};
    lseek(fd, 0, SEEK_SET);
    info.backing = BackingKind::DmaBuf;
    info.size = uint64_t(end);
  }
  return info;
}

// Bytes per row and rows the format needs in plane i.
void plane_geometry(const PixelFormat& f, int i, int32_t width, int32_t height, uint64_t& min_pitch, uint64_t& rows) {
  min_pitch = uint64_t(width) * f.bytes_per_pixel();
  rows = uint64_t(height);
  if (i > 0 && (f.fourcc == DRM_FORMAT_NV12 || f.fourcc == DRM_FORMAT_P010)) {
    min_pitch = uint64_t((width + 1) / 2) * 2 * f.bytes_per_pixel();  // interleaved U/V pairs
    rows = uint64_t((height + 1) / 2);
  }
}

}  // namespace

Result<FrameBufferPtr> FrameBuffer::create(int32_t width, int32_t height, PixelFormat format,
                                           std::array<Plane, kMaxPlanes> planes, int plane_count) {
  std::shared_ptr<FrameBuffer> fb(new FrameBuffer());
  fb->width_ = width;
  fb->height_ = height;
  fb->format_ = format;
  fb->planes_ = std::move(planes);
  fb->plane_count_ = plane_count;
  if (plane_count < 1 || plane_count > kMaxPlanes)
    return Error{fmt::format("plane count {} is outside 1..{}", plane_count, kMaxPlanes)};
  auto info = inspect_fd(fb->planes_[0].fd.get(), 0);
  if (!info) return Error{info.error()};
  fb->id_ = info->id;
  fb->backing_ = info->backing;
  fb->file_size_ = info->size;
  if (Status s = fb->validate(); !s) return Error{s.error()};
  return FrameBufferPtr(std::move(fb));
}

Status FrameBuffer::validate() const {
  if (width_ <= 0 || height_ <= 0 || width_ > kMaxDimension || height_ > kMaxDimension)
    return Error{fmt::format("size {}x{} is outside 1..{} in each dimension", width_, height_, kMaxDimension)};
  if (!format_.known()) return Error{fmt::format("pixel format: {}", format_.name())};
  if (plane_count_ != format_.plane_count())
    return Error{fmt::format("{} needs {} plane(s), the descriptor has {}", format_.name(), format_.plane_count(),
                             plane_count_)};
  for (int i = 0; i < plane_count_; ++i) {
    const Plane& p = planes_[i];
    uint64_t min_pitch = 0, rows = 0;
    plane_geometry(format_, i, width_, height_, min_pitch, rows);
    if (p.pitch < min_pitch)
      return Error{fmt::format("plane {}: stride {} < width {} × {} bytes per pixel", i, p.pitch, width_,
                               min_pitch / std::max<uint64_t>(1, uint64_t(width_)))};
    uint64_t size = file_size_;
    if (i > 0) {
      auto info = inspect_fd(p.fd.get(), i);
      if (!info) return Error{info.error()};
      size = info->size;
    }
    // A short buffer read past its end is a SIGBUS: every byte of every row must be in the fd.
    // The last row needs only its pixels, not its whole pitch (see plane_end()).
    const uint64_t needed = plane_end(i);
    if (size < needed)
      return Error{fmt::format("plane {}: fd holds {} bytes; offset {} + {} rows of stride {} (the last one {} bytes) needs {}",
                               i, size, p.offset, rows, p.pitch, min_pitch, needed)};
  }
  return {};
}

uint64_t FrameBuffer::plane_end(int i) const {
  uint64_t min_pitch = 0, rows = 0;
  plane_geometry(format_, i, width_, height_, min_pitch, rows);
  const Plane& p = planes_[i];
  return rows == 0 ? p.offset : uint64_t(p.offset) + uint64_t(p.pitch) * (rows - 1) + min_pitch;
}

Status FrameBuffer::check_cpu_readable() const {
  if (!format_.linear())
    return Error{fmt::format("modifier {} is not linear: the CPU must not read this buffer",
                             modifier_name(format_.modifier))};
  if (!format_.cpu_readable_rgb() || plane_count_ != 1)
    return Error{fmt::format("{} is not a 32-bit RGB format the CPU path converts", format_.name())};
  return {};
}

Result<FrameBufferPtr> FrameBuffer::allocate_memfd(int32_t width, int32_t height, uint32_t fourcc,
                                                   const std::string& debug_name) {
  PixelFormat format{fourcc, DRM_FORMAT_MOD_LINEAR};
  if (!format.cpu_readable_rgb()) return Error{fmt::format("allocate_memfd: {} is not a 32-bit RGB format", format.name())};
  if (width <= 0 || height <= 0 || width > kMaxDimension || height > kMaxDimension)
    return Error{fmt::format("size {}x{} is outside 1..{} in each dimension", width, height, kMaxDimension)};
  uint32_t pitch = uint32_t(width) * 4;
  uint64_t size = uint64_t(pitch) * uint64_t(height);
  UniqueFd fd(memfd_create(debug_name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return Error{fmt::format("memfd_create({}): {}", debug_name, strerror(errno))};
  if (ftruncate(fd.get(), off_t(size)) != 0) return Error{fmt::format("ftruncate({} bytes): {}", size, strerror(errno))};
  // Nobody may shrink it under a mapping (that would be a SIGBUS in the reader).
  fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL);
  std::array<Plane, kMaxPlanes> planes;
  planes[0] = Plane{std::move(fd), 0, pitch};
  return create(width, height, format, std::move(planes), 1);
}

}  // namespace vdistream::core
