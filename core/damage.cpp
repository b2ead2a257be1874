#include "core/damage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace vdistream::core {

// In 64 bits: a rectangle from outside (QEMU's Update, a guest's sizes) may have any int32 corner
// and size, and x + width must not overflow on the way to finding it empty or clipped.
Rect Rect::intersected(const Rect& o) const {
  if (empty() || o.empty()) return {};
  const int64_t l = std::max(x, o.x), t = std::max(y, o.y);
  const int64_t r = std::min(int64_t(x) + width, int64_t(o.x) + o.width);
  const int64_t b = std::min(int64_t(y) + height, int64_t(o.y) + o.height);
  if (r <= l || b <= t) return {};
  return {int32_t(l), int32_t(t), int32_t(r - l), int32_t(b - t)};  // r - l ≤ min(width, o.width)
}

Rect Rect::united_bounds(const Rect& o) const {
  if (empty()) return o;
  if (o.empty()) return *this;
  const int64_t l = std::min(x, o.x), t = std::min(y, o.y);
  const int64_t r = std::max(int64_t(x) + width, int64_t(o.x) + o.width);
  const int64_t b = std::max(int64_t(y) + height, int64_t(o.y) + o.height);
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  return {int32_t(l), int32_t(t), int32_t(std::min(r - l, kMax)), int32_t(std::min(b - t, kMax))};
}

bool Rect::contains(const Rect& o) const {
  return !o.empty() && o.x >= x && o.y >= y && int64_t(o.x) + o.width <= int64_t(x) + width &&
         int64_t(o.y) + o.height <= int64_t(y) + height;
}

std::string Rect::to_string() const { return fmt::format("{}x{}+{}+{}", width, height, x, y); }

namespace {

// Appends the parts of r outside cut (up to four rects) to out.
void subtract(const Rect& r, const Rect& cut, std::vector<Rect>& out) {
  Rect inter = r.intersected(cut);
  if (inter.empty()) {
    out.push_back(r);
    return;
  }
  if (inter.y > r.y) out.push_back({r.x, r.y, r.width, inter.y - r.y});                     // above
  if (inter.bottom() < r.bottom()) out.push_back({r.x, inter.bottom(), r.width, r.bottom() - inter.bottom()});  // below
  if (inter.x > r.x) out.push_back({r.x, inter.y, inter.x - r.x, inter.height});             // left
  if (inter.right() < r.right()) out.push_back({inter.right(), inter.y, r.right() - inter.right(), inter.height});  // right
}

}  // namespace

void DamageRegion::add(const Rect& r) {
  if (r.empty()) return;
  std::vector<Rect> pieces{r};
  std::vector<Rect> next;
  for (const Rect& existing : rects_) {
    if (existing.contains(r)) return;
    next.clear();
    for (const Rect& p : pieces) subtract(p, existing, next);
    pieces.swap(next);
    if (pieces.empty()) return;
  }
  rects_.insert(rects_.end(), pieces.begin(), pieces.end());
  if (rects_.size() > kMaxRects) {
    Rect b = bounds();
    rects_.assign(1, b);
  }
}

void DamageRegion::add(const DamageRegion& other) {
  for (const Rect& r : other.rects_) add(r);
}

void DamageRegion::intersect(const Rect& r) {
  std::vector<Rect> kept;
  kept.reserve(rects_.size());
  for (const Rect& existing : rects_) {
    Rect i = existing.intersected(r);
    if (!i.empty()) kept.push_back(i);
  }
  rects_.swap(kept);
}

DamageRegion DamageRegion::intersected(const DamageRegion& other) const {
  DamageRegion out;
  for (const Rect& a : rects_)
    for (const Rect& b : other.rects_) {
      Rect i = a.intersected(b);
      if (!i.empty()) out.rects_.push_back(i);  // disjoint: a's and b's are each disjoint
    }
  return out;
}

int64_t DamageRegion::area() const {
  int64_t total = 0;
  for (const Rect& r : rects_) total += r.area();
  return total;
}

bool DamageRegion::covers(int32_t width, int32_t height) const {
  // Rects are disjoint, so the area they hold inside the surface is the surface's only when
  // they cover all of it.
  int64_t inside = 0;
  for (const Rect& r : rects_) inside += r.intersected({0, 0, width, height}).area();
  return inside >= int64_t(width) * height;
}

Rect DamageRegion::bounds() const {
  Rect b;
  for (const Rect& r : rects_) b = b.united_bounds(r);
  return b;
}

TileMask DamageRegion::to_tile_mask(int32_t width, int32_t height, int32_t tile_size) const {
  TileMask mask(width, height, tile_size);
  tile_size = mask.tile_size();  // clamped to at least 1
  for (const Rect& raw : rects_) {
    Rect r = raw.intersected({0, 0, width, height});
    if (r.empty()) continue;
    int32_t c0 = r.x / tile_size, c1 = (r.right() - 1) / tile_size;
    int32_t r0 = r.y / tile_size, r1 = (r.bottom() - 1) / tile_size;
    for (int32_t row = r0; row <= r1; ++row)
      for (int32_t col = c0; col <= c1; ++col) mask.set(col, row);
  }
  return mask;
}

std::string DamageRegion::to_string() const {
  if (rects_.empty()) return "(none)";
  std::string s;
  for (const Rect& r : rects_) {
    if (!s.empty()) s += ' ';
    s += r.to_string();
  }
  return s;
}

TileMask::TileMask(int32_t surface_width, int32_t surface_height, int32_t tile_size)
    : width_(std::max(0, surface_width)),
      height_(std::max(0, surface_height)),
      tile_(std::max(1, tile_size)),
      cols_((width_ + tile_ - 1) / tile_),
      rows_((height_ + tile_ - 1) / tile_),
      bits_(size_t(cols_) * rows_, 0) {}

void TileMask::set_all() { std::fill(bits_.begin(), bits_.end(), 1); }

size_t TileMask::count() const { return size_t(std::count(bits_.begin(), bits_.end(), 1)); }

std::vector<Rect> TileMask::runs() const {
  std::vector<Rect> out;
  for (int32_t row = 0; row < rows_; ++row) {
    int32_t col = 0;
    while (col < cols_) {
      if (!test(col, row)) {
        ++col;
        continue;
      }
      int32_t start = col;
      while (col < cols_ && test(col, row)) ++col;
      Rect r{start * tile_, row * tile_, (col - start) * tile_, tile_};
      out.push_back(r.intersected({0, 0, width_, height_}));
    }
  }
  return out;
}

std::vector<Rect> TileMask::rects() const {
  std::vector<Rect> out;
  std::vector<size_t> open;  // indices into out of the rects that reach the previous tile row
  std::vector<size_t> next_open;
  for (int32_t row = 0; row < rows_; ++row) {
    next_open.clear();
    size_t scan = 0;  // open rects are in column order, as are this row's runs
    int32_t col = 0;
    while (col < cols_) {
      if (!test(col, row)) {
        ++col;
        continue;
      }
      const int32_t start = col;
      while (col < cols_ && test(col, row)) ++col;
      const int32_t x = start * tile_, width = (col - start) * tile_;
      while (scan < open.size() && out[open[scan]].x < x) ++scan;
      if (scan < open.size() && out[open[scan]].x == x && out[open[scan]].width == width) {
        out[open[scan]].height += tile_;
        next_open.push_back(open[scan]);
      } else {
        out.push_back({x, row * tile_, width, tile_});
        next_open.push_back(out.size() - 1);
      }
    }
    open.swap(next_open);
  }
  for (Rect& r : out) r = r.intersected({0, 0, width_, height_});
  return out;
}

DamageRegion TileMask::to_region() const {
  DamageRegion region;
  for (const Rect& r : rects()) region.add(r);
  return region;
}

}  // namespace vdistream::core
