#include "core/tile_diff.hpp"

#include <algorithm>
#include <cstring>

namespace vdistream::core {

namespace {

constexpr size_t kBytesPerPixel = 4;

// Rows of `row_bytes` at s and d: does any differ? If so, all of them are copied to d.
bool compare_and_copy(const uint8_t* s, size_t s_pitch, uint8_t* d, size_t d_pitch, size_t row_bytes, int32_t rows,
                      TileDiffCounters& counters) {
  int32_t first_difference = rows;
  for (int32_t y = 0; y < rows; ++y)
    if (std::memcmp(s + size_t(y) * s_pitch, d + size_t(y) * d_pitch, row_bytes) != 0) {
      first_difference = y;
      break;
    }
  if (first_difference == rows) return false;
  // The rows above the first difference are equal already.
  for (int32_t y = first_difference; y < rows; ++y) std::memcpy(d + size_t(y) * d_pitch, s + size_t(y) * s_pitch, row_bytes);
  counters.bytes_copied += uint64_t(rows - first_difference) * row_bytes;
  return true;
}

// Calls fn(col, row, part) for each tile of the grid that `area` touches, with the part of the
// tile inside `area`.
template <typename Fn>
void for_each_tile(const Rect& area, int32_t tile, Fn&& fn) {
  if (area.empty()) return;
  const int32_t c0 = area.x / tile, c1 = (area.right() - 1) / tile;
  const int32_t r0 = area.y / tile, r1 = (area.bottom() - 1) / tile;
  for (int32_t row = r0; row <= r1; ++row)
    for (int32_t col = c0; col <= c1; ++col)
      fn(col, row, Rect{col * tile, row * tile, tile, tile}.intersected(area));
}

}  // namespace

void write_changed_tiles(const Rect& area, const uint8_t* src, size_t src_pitch, uint8_t* surface, size_t surface_pitch,
                         TileMask& changed, TileDiffCounters& counters) {
  for_each_tile(area, changed.tile_size(), [&](int32_t col, int32_t row, const Rect& part) {
    ++counters.tiles_compared;
    const uint8_t* s = src + size_t(part.y - area.y) * src_pitch + size_t(part.x - area.x) * kBytesPerPixel;
    uint8_t* d = surface + size_t(part.y) * surface_pitch + size_t(part.x) * kBytesPerPixel;
    if (!compare_and_copy(s, src_pitch, d, surface_pitch, size_t(part.width) * kBytesPerPixel, part.height, counters))
      return;
    ++counters.tiles_changed;
    changed.set(col, row);
  });
}

void TileMirror::reset(int32_t width, int32_t height) {
  width_ = std::max(0, width);
  height_ = std::max(0, height);
  columns_ = (width_ + kTile - 1) / kTile;
  rows_ = (height_ + kTile - 1) / kTile;
  pixels_.assign(size_t(width_) * size_t(height_) * kBytesPerPixel, 0);
  known_.assign(size_t(columns_) * size_t(rows_), 0);
}

void TileMirror::forget() { std::fill(known_.begin(), known_.end(), 0); }

void TileMirror::forget(const DamageRegion& damage) {
  if (known_.empty()) return;
  const TileMask mask = damage.to_tile_mask(width_, height_, kTile);
  for (int32_t row = 0; row < rows_; ++row)
    for (int32_t col = 0; col < columns_; ++col)
      if (mask.test(col, row)) known_[size_t(row) * columns_ + col] = 0;
}

void TileMirror::refine(const uint8_t* picture, size_t pitch, const Rect& area, TileMask& changed,
                        TileDiffCounters& counters) {
  const size_t mirror_pitch = size_t(width_) * kBytesPerPixel;
  const Rect surface{0, 0, width_, height_};
  for_each_tile(area.intersected(surface), kTile, [&](int32_t col, int32_t row, const Rect& part) {
    ++counters.tiles_compared;
    uint8_t& known = known_[size_t(row) * columns_ + col];
    // A tile never looked at is taken whole, not only the part inside `area`: a later compare of
    // its other part must find what the consumers were given, not the mirror's zeros.
    const Rect take = known ? part : Rect{col * kTile, row * kTile, kTile, kTile}.intersected(surface);
    const uint8_t* s = picture + size_t(take.y) * pitch + size_t(take.x) * kBytesPerPixel;
    uint8_t* d = pixels_.data() + size_t(take.y) * mirror_pitch + size_t(take.x) * kBytesPerPixel;
    const size_t row_bytes = size_t(take.width) * kBytesPerPixel;
    if (!known) {
      for (int32_t y = 0; y < take.height; ++y) std::memcpy(d + size_t(y) * mirror_pitch, s + size_t(y) * pitch, row_bytes);
      counters.bytes_copied += uint64_t(take.height) * row_bytes;
      known = 1;
    } else if (!compare_and_copy(s, pitch, d, mirror_pitch, row_bytes, take.height, counters)) {
      return;
    }
    ++counters.tiles_changed;
    changed.set(col, row);
  });
}

}  // namespace vdistream::core
