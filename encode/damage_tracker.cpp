#include "encode/damage_tracker.hpp"

#include <algorithm>
#include <cstring>

namespace vdistream::encode {

void DamageTracker::reset() { std::fill(valid_.begin(), valid_.end(), 0); }

void DamageTracker::forget(const core::DamageRegion& damage) {
  if (valid_.empty()) return;
  core::TileMask mask = damage.to_tile_mask(width_, height_, kTile);
  for (int32_t row = 0; row < rows_; ++row)
    for (int32_t col = 0; col < columns_; ++col)
      if (mask.test(col, row)) valid_[size_t(row) * columns_ + col] = 0;
}

void DamageTracker::track(core::Frame& frame) {
  if (!frame.buffer) return;
  const int32_t width = frame.width(), height = frame.height();
  if (width != width_ || height != height_) {
    width_ = width;
    height_ = height;
    columns_ = (width + kTile - 1) / kTile;
    rows_ = (height + kTile - 1) / kTile;
    shadow_.assign(size_t(width) * size_t(height) * 4, 0);
    valid_.assign(size_t(columns_) * size_t(rows_), 0);
  }
  if (frame.damage_exact) {
    forget(frame.damage);
    return;
  }
  if (!frame.buffer->check_cpu_readable()) {  // tiled or not RGB: pass with the damage it has
    forget(frame.damage);
    return;
  }
  auto mapped = mappings_.get(*frame.buffer);
  if (!mapped) {
    forget(frame.damage);
    return;
  }
  const core::MappedBuffer& map = **mapped;
  core::MappedBuffer::CpuAccess access(map);
  core::TileMask candidates = frame.damage.to_tile_mask(width, height, kTile);
  core::TileMask changed(width, height, kTile);
  const size_t shadow_pitch = size_t(width) * 4;
  for (int32_t row = 0; row < rows_; ++row) {
    const int32_t y0 = row * kTile, y1 = std::min(height, y0 + kTile);
    for (int32_t col = 0; col < columns_; ++col) {
      if (!candidates.test(col, row)) continue;
      ++tiles_compared_;
      const int32_t x0 = col * kTile;
      const size_t bytes = size_t(std::min(width, x0 + kTile) - x0) * 4;
      uint8_t& valid = valid_[size_t(row) * columns_ + col];
      bool differs = !valid;
      for (int32_t y = y0; y < y1 && !differs; ++y)
        differs = std::memcmp(map.data() + size_t(y) * map.pitch() + size_t(x0) * 4,
                              shadow_.data() + size_t(y) * shadow_pitch + size_t(x0) * 4, bytes) != 0;
      if (!differs) continue;
      for (int32_t y = y0; y < y1; ++y)
        std::memcpy(shadow_.data() + size_t(y) * shadow_pitch + size_t(x0) * 4,
                    map.data() + size_t(y) * map.pitch() + size_t(x0) * 4, bytes);
      valid = 1;
      changed.set(col, row);
      ++tiles_changed_;
    }
  }
  if (changed.count() == size_t(columns_) * size_t(rows_)) ++full_frame_copies_;
  core::DamageRegion damage;
  for (const core::Rect& r : changed.runs()) damage.add(r);
  frame.damage = std::move(damage);
  frame.damage_exact = true;
}

}  // namespace vdistream::encode
