// Pixels QEMU sends by value (Scanout/Update with `ay`, QEMU 7.2 and surfaces QEMU cannot
// share), kept in one memfd surface per size. Each rectangle is compared with what the surface
// holds tile by tile and only the tiles that differ are written (core::write_changed_tiles):
// VGA reports whole scanline bands, most of which did not change.
//
// One surface, written in place. Pixel data sent by value is written once into the surface and
// never copied again (ARCHITECTURE invariant 1), so a pool would not help: keeping a second
// buffer current would mean writing every rectangle twice. The encoder may therefore read a tile
// while the next refresh writes it; such a tear never stays on screen because that refresh's
// frame is handed on after the write, its damage covers the tile, and the latest-wins slot
// merges damage, so the encoder converts the tile again from the finished pixels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/damage.hpp"
#include "core/frame_buffer.hpp"
#include "core/mapped_buffer.hpp"
#include "core/status.hpp"
#include "core/tile_diff.hpp"

namespace vdistream::capture::qemu {

class ValueSurface {
 public:
  explicit ValueSurface(std::string debug_name) : debug_name_(std::move(debug_name)) {}

  // A surface of this size and format, new when it differs (then `reallocated`).
  core::Status ensure(uint32_t width, uint32_t height, uint32_t fourcc, bool& reallocated);
  // Writes `rect` (inside the surface) from `data` (`stride` bytes per row, validated by the
  // caller); the tiles that changed are set in `changed`.
  void write(const core::Rect& rect, const uint8_t* data, uint32_t stride, core::TileMask& changed,
             core::TileDiffCounters& counters);
  // Writes every row without comparing (a new surface holds nothing to compare with).
  void write_all(const uint8_t* data, uint32_t stride);
  void reset();

  const core::FrameBufferPtr& buffer() const { return buffer_; }
  bool contains(const core::Rect& rect) const {
    return buffer_ && rect.intersected({0, 0, buffer_->width(), buffer_->height()}) == rect;
  }

 private:
  std::string debug_name_;
  core::FrameBufferPtr buffer_;
  std::shared_ptr<core::MappedBuffer> map_;
};

}  // namespace vdistream::capture::qemu
