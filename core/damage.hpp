// Which pixels changed: a set of disjoint rectangles, and its tile mask.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vdistream::core {

class DamageRegion;

struct Rect {
  int32_t x = 0, y = 0, width = 0, height = 0;

  bool empty() const { return width <= 0 || height <= 0; }
  int32_t right() const { return x + width; }
  int32_t bottom() const { return y + height; }
  int64_t area() const { return empty() ? 0 : int64_t(width) * height; }
  Rect intersected(const Rect& o) const;
  Rect united_bounds(const Rect& o) const;  // smallest rect holding both
  bool contains(const Rect& o) const;
  bool operator==(const Rect&) const = default;
  std::string to_string() const;  // "WxH+X+Y"
};

// Which tiles of a surface are touched by a region.
class TileMask {
 public:
  TileMask() = default;
  TileMask(int32_t surface_width, int32_t surface_height, int32_t tile_size);

  int32_t tile_size() const { return tile_; }
  int32_t columns() const { return cols_; }
  int32_t rows() const { return rows_; }
  bool test(int32_t col, int32_t row) const { return bits_[size_t(row) * cols_ + col] != 0; }
  void set(int32_t col, int32_t row) { bits_[size_t(row) * cols_ + col] = 1; }
  void set_all();
  size_t count() const;
  // Horizontal runs of set tiles, as pixel rectangles clipped to the surface.
  std::vector<Rect> runs() const;
  // The same tiles as few rectangles: runs of consecutive rows with the same columns are one
  // rectangle (a changed window is one, not one per tile row). Disjoint, clipped to the surface.
  std::vector<Rect> rects() const;
  DamageRegion to_region() const;

 private:
  int32_t width_ = 0, height_ = 0, tile_ = 1, cols_ = 0, rows_ = 0;
  std::vector<uint8_t> bits_;
};

class DamageRegion {
 public:
  DamageRegion() = default;
  explicit DamageRegion(const Rect& r) { add(r); }
  static DamageRegion full(int32_t width, int32_t height) { return DamageRegion({0, 0, width, height}); }

  // Union: only the part of r not already covered is stored, so rects stay disjoint.
  void add(const Rect& r);
  void add(const DamageRegion& other);
  // Keep only what lies inside r / inside other.
  void intersect(const Rect& r);
  DamageRegion intersected(const DamageRegion& other) const;
  void clip(int32_t width, int32_t height) { intersect({0, 0, width, height}); }
  void clear() { rects_.clear(); }

  bool empty() const { return rects_.empty(); }
  const std::vector<Rect>& rects() const { return rects_; }
  int64_t area() const;  // exact, since rects are disjoint
  Rect bounds() const;
  // Is every pixel of a width × height surface damaged? (Damage outside the surface does not count.)
  bool covers(int32_t width, int32_t height) const;
  TileMask to_tile_mask(int32_t width, int32_t height, int32_t tile_size) const;
  std::string to_string() const;

  // Beyond this many rects the region is replaced by its bounding box: exact enough, and
  // union stays cheap however fragmented the damage a source reports.
  static constexpr size_t kMaxRects = 256;

 private:
  std::vector<Rect> rects_;
};

}  // namespace vdistream::core
