// Pixels for the synthetic desktop: XRGB8888 (bytes B, G, R, X in memory), an owned picture
// that scenes precompute once, and a clipped view every drawing call goes through.
#pragma once

#include <cstdint>
#include <vector>

#include "core/damage.hpp"

namespace vdistream::capture::synth {

constexpr uint32_t xrgb(uint32_t r, uint32_t g, uint32_t b) { return 0xff000000u | (r << 16) | (g << 8) | b; }

// A fixed, well-mixed integer hash: the only source of "randomness", so every frame is
// reproducible.
constexpr uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
constexpr uint32_t hash32(uint32_t a, uint32_t b) { return hash32(a ^ hash32(b + 0x9e3779b9u)); }
constexpr uint32_t hash32(uint32_t a, uint32_t b, uint32_t c) { return hash32(hash32(a, b), c); }

class Canvas;

// An owned XRGB picture without row padding.
class Image {
 public:
  Image() = default;
  Image(int32_t width, int32_t height, uint32_t fill = xrgb(0, 0, 0));

  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  uint32_t pitch() const { return uint32_t(width_) * 4; }
  core::Rect rect() const { return {0, 0, width_, height_}; }
  uint32_t* row(int32_t y) { return pixels_.data() + size_t(y) * size_t(width_); }
  const uint32_t* row(int32_t y) const { return pixels_.data() + size_t(y) * size_t(width_); }
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(pixels_.data()); }
  Canvas canvas();

 private:
  int32_t width_ = 0, height_ = 0;
  std::vector<uint32_t> pixels_;
};

// A view of a surface's pixels (addressed in surface coordinates) that draws only inside its
// clip rectangle. The clip must lie inside the surface.
class Canvas {
 public:
  Canvas(uint8_t* pixels, uint32_t pitch, const core::Rect& clip) : pixels_(pixels), pitch_(pitch), clip_(clip) {}

  const core::Rect& clip() const { return clip_; }
  // The same pixels, drawing only where `r` and this clip overlap.
  Canvas clipped_to(const core::Rect& r) const { return Canvas(pixels_, pitch_, clip_.intersected(r)); }
  uint32_t* row(int32_t y) const { return reinterpret_cast<uint32_t*>(pixels_ + size_t(y) * pitch_); }

  void fill(const core::Rect& r, uint32_t color) const;
  // Copies `src` with its top-left corner at (x, y).
  void blit(const Image& src, int32_t x, int32_t y) const;
  // Fills `dest` with `src` repeated in both directions, src pixel (src_x, src_y) landing on
  // dest's top-left corner: the pan of a tileable texture, done with row copies only.
  void blit_tiled(const Image& src, int64_t src_x, int64_t src_y, const core::Rect& dest) const;

 private:
  uint8_t* pixels_;
  uint32_t pitch_;
  core::Rect clip_;
};

// Tileable value noise in [0, 1): smooth random hills on a lattice of `cell` pixels whose
// pattern repeats every `period_x` x `period_y` pixels (multiples of cell).
class ValueNoise {
 public:
  ValueNoise(uint32_t seed, int32_t cell, int32_t period_x, int32_t period_y);
  // out[x] += weight * noise(x, y) for x in [0, width): a whole row at a time, because
  // scenes fill megapixel textures with several octaves of this.
  void accumulate_row(int32_t y, float weight, float* out, int32_t width) const;

 private:
  const float* lattice_row(int32_t iy) const;

  int32_t cell_, columns_, rows_;
  std::vector<float> values_;  // one per lattice point, columns_ x rows_
};

}  // namespace vdistream::capture::synth
