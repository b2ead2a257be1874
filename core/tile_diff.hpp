// What really changed inside an area a source only says "may have changed": the new picture is
// compared with an older copy of it tile by tile (the damage grid, 16×16 = the encoder's
// macroblocks), and the copy is brought up to date in the tiles that differ, and only there.
// QEMU's SPICE display does the same against a mirror of the guest's surface; without it, the
// whole scanline bands VGA reports become images and conversions of pixels that did not change.
//
// Two ways to hold the older copy:
// - write_changed_tiles(): the copy is the desktop's own surface, and the new pixels arrive for
//   the area only (QEMU's Update by value). Nothing extra is kept.
// - TileMirror: a mirror of a picture someone else writes in place (QEMU's shared-memory surface,
//   a dma-buf), filled lazily: a tile is copied the first time it is looked at, so a new scanout
//   costs no whole-picture copy up front.
// Both take 32-bit pixels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/damage.hpp"

namespace vdistream::core {

struct TileDiffCounters {
  uint64_t tiles_compared = 0;
  uint64_t tiles_changed = 0;
  uint64_t bytes_copied = 0;  // into the older copy
};

// `area` (surface coordinates, inside `changed`'s surface) of new pixels at `src` (its top-left
// pixel, `src_pitch` bytes per row) against the surface at `surface` (its pixel (0,0)): the parts
// of each tile that differ are written into the surface and the tile is set in `changed`.
void write_changed_tiles(const Rect& area, const uint8_t* src, size_t src_pitch, uint8_t* surface, size_t surface_pitch,
                         TileMask& changed, TileDiffCounters& counters);

class TileMirror {
 public:
  static constexpr int32_t kTile = 16;

  // A new size: nothing is known, and the memory for the copy is (re)allocated.
  void reset(int32_t width, int32_t height);
  // Nothing / the tiles under `damage` are known any more (a new buffer; someone else used them).
  void forget();
  void forget(const DamageRegion& damage);

  // Compares `area` of the picture at `picture` (its pixel (0,0), `pitch` bytes per row, the
  // mirror's size) with the mirror: tiles that differ, and tiles never looked at before (copied
  // whole), are updated in the mirror and set in `changed` (a mask over the mirror's grid).
  void refine(const uint8_t* picture, size_t pitch, const Rect& area, TileMask& changed, TileDiffCounters& counters);

  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  TileMask empty_mask() const { return TileMask(width_, height_, kTile); }

 private:
  int32_t width_ = 0, height_ = 0, columns_ = 0, rows_ = 0;
  std::vector<uint8_t> pixels_;  // width_ × height_ × 4, packed
  std::vector<uint8_t> known_;   // per tile: does the mirror hold it?
};

}  // namespace vdistream::core
