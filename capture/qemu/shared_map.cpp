#include "capture/qemu/shared_map.hpp"

#include <drm_fourcc.h>
#include <fcntl.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "core/pixel_format.hpp"

namespace vdistream::capture::qemu {

namespace {

// A memfd shrunk under our mapping would be a SIGBUS in whichever thread reads it next. Ours are
// sealed against that; QEMU's may not be, and sealing one is possible only when its creator
// allowed sealing. Says why when neither holds.
core::Status ensure_sealed_against_shrinking(int fd) {
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return core::Error{fmt::format("F_GET_SEALS: {}", strerror(errno))};
  if (seals & F_SEAL_SHRINK) return {};
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0) return {};
  return core::Error{fmt::format("F_ADD_SEALS(F_SEAL_SHRINK): {}", strerror(errno))};
}

}  // namespace

core::Status SharedMap::scanout(core::UniqueFd fd, uint32_t offset, uint32_t width, uint32_t height, uint32_t stride,
                                uint32_t pixman_format) {
  reset();
  const uint32_t fourcc = core::fourcc_from_pixman(pixman_format);
  if (fourcc == 0) return core::Error{fmt::format("pixman format 0x{:08x} is not a 32-bit RGB format", pixman_format)};
  if (core::Status sealed = ensure_sealed_against_shrinking(fd.get()); !sealed && !warned_unsealed_) {
    warned_unsealed_ = true;
    log_.info("QEMU's shared surface is not sealed against shrinking ({}); its size is checked once, at ScanoutMap",
              sealed.error());
  }
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  planes[0] = core::Plane{std::move(fd), offset, stride};
  // FrameBuffer::create checks size, stride, and offset + stride × height against the fd.
  auto buffer = core::FrameBuffer::create(int32_t(width), int32_t(height), {fourcc, DRM_FORMAT_MOD_LINEAR},
                                          std::move(planes), 1);
  if (!buffer) return core::Error{buffer.error()};
  auto mapping = core::MappedBuffer::map(**buffer);
  if (!mapping) return core::Error{fmt::format("mapping the shared surface: {}", mapping.error())};
  buffer_ = std::move(*buffer);
  map_ = std::move(*mapping);
  if (mirror_.width() != int32_t(width) || mirror_.height() != int32_t(height))
    mirror_.reset(int32_t(width), int32_t(height));
  else
    mirror_.forget();
  return {};
}

core::Status SharedMap::update(const core::Rect& rect, core::TileMask& changed, core::TileDiffCounters& counters) {
  if (!buffer_) return core::Error{"an UpdateMap without a valid ScanoutMap"};
  const core::Rect whole{0, 0, buffer_->width(), buffer_->height()};
  const core::Rect inside = rect.intersected(whole);
  if (inside.empty())
    return core::Error{fmt::format("rectangle {} is outside the {}x{} shared surface", rect.to_string(), whole.width,
                                   whole.height)};
  core::MappedBuffer::CpuAccess access(*map_);
  mirror_.refine(map_->data(), map_->pitch(), inside, changed, counters);
  return {};
}

void SharedMap::reset() {
  buffer_.reset();
  map_.reset();
}

}  // namespace vdistream::capture::qemu
