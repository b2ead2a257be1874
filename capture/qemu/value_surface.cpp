#include "capture/qemu/value_surface.hpp"

#include <fmt/format.h>

#include <cstring>

namespace vdistream::capture::qemu {

core::Status ValueSurface::ensure(uint32_t width, uint32_t height, uint32_t fourcc, bool& reallocated) {
  reallocated = false;
  if (buffer_ && uint32_t(buffer_->width()) == width && uint32_t(buffer_->height()) == height &&
      buffer_->format().fourcc == fourcc)
    return {};
  // allocate_memfd refuses sizes outside 1..16384 before it allocates anything.
  auto buffer = core::FrameBuffer::allocate_memfd(int32_t(width), int32_t(height), fourcc, debug_name_);
  if (!buffer) return core::Error{fmt::format("surface {}x{}: {}", width, height, buffer.error())};
  auto mapping = core::MappedBuffer::map(**buffer, core::MappedBuffer::Access::ReadWrite);
  if (!mapping) return core::Error{fmt::format("mapping the {}x{} surface: {}", width, height, mapping.error())};
  buffer_ = std::move(*buffer);
  map_ = std::move(*mapping);
  reallocated = true;
  return {};
}

void ValueSurface::write(const core::Rect& rect, const uint8_t* data, uint32_t stride, core::TileMask& changed,
                         core::TileDiffCounters& counters) {
  core::MappedBuffer::CpuAccess access(*map_);
  core::write_changed_tiles(rect, data, stride, map_->writable_data(), map_->pitch(), changed, counters);
}

void ValueSurface::write_all(const uint8_t* data, uint32_t stride) {
  core::MappedBuffer::CpuAccess access(*map_);
  uint8_t* out = map_->writable_data();
  for (int32_t row = 0; row < buffer_->height(); ++row)
    std::memcpy(out + size_t(row) * map_->pitch(), data + size_t(row) * stride, size_t(buffer_->width()) * 4);
}

void ValueSurface::reset() {
  buffer_.reset();
  map_.reset();
}

}  // namespace vdistream::capture::qemu
