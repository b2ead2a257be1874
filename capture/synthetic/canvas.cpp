#include "capture/synthetic/canvas.hpp"

#include <algorithm>
#include <cstring>

namespace vdistream::capture::synth {

Image::Image(int32_t width, int32_t height, uint32_t fill)
    : width_(std::max(0, width)), height_(std::max(0, height)), pixels_(size_t(width_) * size_t(height_), fill) {}

Canvas Image::canvas() { return Canvas(bytes(), pitch(), rect()); }

void Canvas::fill(const core::Rect& r, uint32_t color) const {
  core::Rect area = r.intersected(clip_);
  if (area.empty()) return;
  for (int32_t y = area.y; y < area.bottom(); ++y) std::fill_n(row(y) + area.x, area.width, color);
}

void Canvas::blit(const Image& src, int32_t x, int32_t y) const {
  core::Rect area = core::Rect{x, y, src.width(), src.height()}.intersected(clip_);
  if (area.empty()) return;
  for (int32_t dy = area.y; dy < area.bottom(); ++dy)
    std::memcpy(row(dy) + area.x, src.row(dy - y) + (area.x - x), size_t(area.width) * 4);
}

namespace {

int32_t wrap(int64_t v, int32_t period) {
  int64_t m = v % period;
  return int32_t(m < 0 ? m + period : m);
}

}  // namespace

void Canvas::blit_tiled(const Image& src, int64_t src_x, int64_t src_y, const core::Rect& dest) const {
  core::Rect area = dest.intersected(clip_);
  if (area.empty() || src.width() == 0 || src.height() == 0) return;
  const int32_t first_column = wrap(src_x + (area.x - dest.x), src.width());
  for (int32_t y = area.y; y < area.bottom(); ++y) {
    const uint32_t* src_row = src.row(wrap(src_y + (y - dest.y), src.height()));
    uint32_t* out = row(y) + area.x;
    int32_t column = first_column, remaining = area.width;
    while (remaining > 0) {
      int32_t run = std::min(remaining, src.width() - column);
      std::memcpy(out, src_row + column, size_t(run) * 4);
      out += run;
      remaining -= run;
      column = 0;
    }
  }
}

ValueNoise::ValueNoise(uint32_t seed, int32_t cell, int32_t period_x, int32_t period_y)
    : cell_(std::max(1, cell)),
      columns_(std::max(1, period_x / cell_)),
      rows_(std::max(1, period_y / cell_)),
      values_(size_t(columns_) * size_t(rows_)) {
  for (int32_t iy = 0; iy < rows_; ++iy)
    for (int32_t ix = 0; ix < columns_; ++ix)
      values_[size_t(iy) * size_t(columns_) + size_t(ix)] = float(hash32(seed, uint32_t(ix), uint32_t(iy)) >> 8) / 16777216.0f;
}

const float* ValueNoise::lattice_row(int32_t iy) const {
  return values_.data() + size_t(wrap(iy, rows_)) * size_t(columns_);
}

namespace {

float smoothstep(float f) { return f * f * (3 - 2 * f); }  // no visible lattice creases

}  // namespace

void ValueNoise::accumulate_row(int32_t y, float weight, float* out, int32_t width) const {
  const int32_t iy = wrap(y / cell_, rows_);
  const float fy = smoothstep(float(wrap(y, cell_)) / float(cell_));
  const float* above = lattice_row(iy);
  const float* below = lattice_row(iy + 1);
  const float step = 1.0f / float(cell_);
  for (int32_t x0 = 0, ix = 0; x0 < width; x0 += cell_, ++ix) {
    int32_t left = wrap(ix, columns_), right = wrap(ix + 1, columns_);
    float a = weight * (above[left] + (below[left] - above[left]) * fy);
    float b = weight * (above[right] + (below[right] - above[right]) * fy);
    int32_t end = std::min(width, x0 + cell_);
    for (int32_t x = x0; x < end; ++x) out[x] += a + (b - a) * smoothstep(float(x - x0) * step);
  }
}

}  // namespace vdistream::capture::synth
