#include <catch2/catch.hpp>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "core/damage.hpp"

namespace core = vdistream::core;
using core::DamageRegion;
using core::Rect;
using core::TileMask;

namespace {

bool pairwise_disjoint(const DamageRegion& region) {
  const auto& rects = region.rects();
  for (size_t i = 0; i < rects.size(); ++i)
    for (size_t j = i + 1; j < rects.size(); ++j)
      if (!rects[i].intersected(rects[j]).empty()) return false;
  return true;
}

bool none_empty(const DamageRegion& region) {
  for (const Rect& r : region.rects())
    if (r.empty()) return false;
  return true;
}

// The reference model: one byte per pixel of a small world, set where damage is.
class PixelBitmap {
 public:
  PixelBitmap(int32_t width, int32_t height) : width_(width), height_(height), bits_(size_t(width) * height, 0) {}

  void add(const Rect& r) {
    for_each_pixel(r, [&](int32_t x, int32_t y) { at(x, y) = 1; });
  }
  void intersect(const Rect& r) {
    for (int32_t y = 0; y < height_; ++y)
      for (int32_t x = 0; x < width_; ++x)
        if (!inside(r, x, y)) at(x, y) = 0;
  }
  int64_t count() const {
    int64_t n = 0;
    for (uint8_t b : bits_) n += b;
    return n;
  }
  bool test(int32_t x, int32_t y) const { return bits_[size_t(y) * width_ + x] != 0; }

  // How many of the region's rects hold each pixel; 0 outside every rect.
  std::vector<int> coverage(const DamageRegion& region) const {
    std::vector<int> cover(bits_.size(), 0);
    for (const Rect& r : region.rects())
      for_each_pixel(r, [&](int32_t x, int32_t y) { ++cover[size_t(y) * width_ + x]; });
    return cover;
  }

  int32_t width() const { return width_; }
  int32_t height() const { return height_; }

 private:
  static bool inside(const Rect& r, int32_t x, int32_t y) {
    return x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
  }
  template <typename F>
  void for_each_pixel(const Rect& r, F f) const {
    Rect c = r.intersected({0, 0, width_, height_});
    for (int32_t y = c.y; y < c.bottom(); ++y)
      for (int32_t x = c.x; x < c.right(); ++x) f(x, y);
  }
  uint8_t& at(int32_t x, int32_t y) { return bits_[size_t(y) * width_ + x]; }

  int32_t width_, height_;
  std::vector<uint8_t> bits_;
};

// A rect inside a world of the given size; sometimes degenerate (zero or negative extent).
Rect random_rect(std::mt19937& rng, int32_t world, int32_t max_extent) {
  std::uniform_int_distribution<int32_t> pos(0, world - 1);
  std::uniform_int_distribution<int32_t> percent(0, 99);
  Rect r;
  r.x = pos(rng);
  r.y = pos(rng);
  std::uniform_int_distribution<int32_t> w(1, std::min(max_extent, world - r.x));
  std::uniform_int_distribution<int32_t> h(1, std::min(max_extent, world - r.y));
  r.width = w(rng);
  r.height = h(rng);
  int32_t roll = percent(rng);
  if (roll < 3) r.width = 0;
  else if (roll < 5) r.height = -r.height;
  return r;
}

// The region agrees with the bitmap: same area, and every damaged pixel is in exactly one rect
// (which, with equal area, also means no rect holds an undamaged pixel).
void require_matches(const DamageRegion& region, const PixelBitmap& bitmap) {
  for (const Rect& r : region.rects()) {
    INFO("rect " << r.to_string());
    REQUIRE_FALSE(r.empty());
    REQUIRE(Rect{0, 0, bitmap.width(), bitmap.height()}.contains(r));
  }
  REQUIRE(region.area() == bitmap.count());
  std::vector<int> cover = bitmap.coverage(region);
  for (int32_t y = 0; y < bitmap.height(); ++y)
    for (int32_t x = 0; x < bitmap.width(); ++x) {
      int expected = bitmap.test(x, y) ? 1 : 0;
      if (cover[size_t(y) * bitmap.width() + x] != expected) {
        INFO("pixel " << x << "," << y << " in " << region.to_string());
        REQUIRE(cover[size_t(y) * bitmap.width() + x] == expected);
      }
    }
}

}  // namespace

// ---- Rect ----------------------------------------------------------------------------------

TEST_CASE("a rect with no width or height is empty and has no area", "[damage]") {
  CHECK(Rect{}.empty());
  CHECK(Rect{5, 5, 0, 10}.empty());
  CHECK(Rect{5, 5, 10, -1}.empty());
  CHECK(Rect{5, 5, -3, -3}.area() == 0);
  Rect r{10, 20, 30, 40};
  CHECK_FALSE(r.empty());
  CHECK(r.right() == 40);
  CHECK(r.bottom() == 60);
  CHECK(r.area() == 1200);
  CHECK(Rect{0, 0, 65536, 65536}.area() == int64_t(1) << 32);  // no 32-bit overflow
}

TEST_CASE("rect intersection is the overlap, and empty when rects only touch", "[damage]") {
  Rect a{0, 0, 10, 10};
  CHECK(a.intersected({5, 5, 10, 10}) == Rect{5, 5, 5, 5});
  CHECK(a.intersected({2, 3, 4, 5}) == Rect{2, 3, 4, 5});
  CHECK(a.intersected({10, 0, 5, 5}).empty());   // shares the right edge only
  CHECK(a.intersected({0, 10, 5, 5}).empty());   // shares the bottom edge only
  CHECK(a.intersected({20, 20, 5, 5}).empty());
  CHECK(a.intersected({-5, -5, 10, 10}) == Rect{0, 0, 5, 5});
}

TEST_CASE("united bounds is the smallest rect holding both and ignores empty rects", "[damage]") {
  CHECK(Rect{0, 0, 10, 10}.united_bounds({20, 5, 5, 20}) == Rect{0, 0, 25, 25});
  CHECK(Rect{}.united_bounds({3, 4, 5, 6}) == Rect{3, 4, 5, 6});
  CHECK(Rect{3, 4, 5, 6}.united_bounds({100, 100, 0, 0}) == Rect{3, 4, 5, 6});
}

TEST_CASE("a rect contains itself and what lies inside it, never an empty rect", "[damage]") {
  Rect r{10, 10, 20, 20};
  CHECK(r.contains(r));
  CHECK(r.contains({15, 15, 5, 5}));
  CHECK_FALSE(r.contains({5, 15, 10, 5}));
  CHECK_FALSE(r.contains({15, 15, 20, 5}));
  CHECK_FALSE(r.contains({15, 15, 0, 0}));
}

TEST_CASE("a rect prints as WxH+X+Y", "[damage]") {
  CHECK(Rect{1, 2, 30, 40}.to_string() == "30x40+1+2");
  CHECK(DamageRegion().to_string() == "(none)");
  CHECK(DamageRegion({1, 2, 3, 4}).to_string() == "3x4+1+2");
}

// ---- DamageRegion union ---------------------------------------------------------------------

TEST_CASE("adding overlapping rects stores only the uncovered part", "[damage]") {
  DamageRegion region({0, 0, 10, 10});
  region.add({5, 5, 10, 10});
  CHECK(region.area() == 100 + 100 - 25);
  CHECK(pairwise_disjoint(region));
  CHECK(none_empty(region));
  CHECK(region.bounds() == Rect{0, 0, 15, 15});
}

TEST_CASE("adding a rect that is already covered changes nothing", "[damage]") {
  DamageRegion region({0, 0, 10, 10});
  region.add({20, 0, 10, 10});
  auto before = region.rects();
  region.add({2, 2, 5, 5});
  region.add({0, 0, 10, 10});
  region.add({20, 0, 10, 10});
  CHECK(region.rects() == before);
  CHECK(region.area() == 200);
}

TEST_CASE("adding a rect that spans two disjoint rects covers the gap without double counting", "[damage]") {
  DamageRegion region({0, 0, 10, 10});
  region.add({20, 0, 10, 10});
  region.add({5, 0, 20, 10});
  CHECK(region.area() == 300);
  CHECK(pairwise_disjoint(region));
  CHECK(region.bounds() == Rect{0, 0, 30, 10});
}

TEST_CASE("adding a superset of the region leaves exactly the superset's area", "[damage]") {
  DamageRegion region({2, 2, 4, 4});
  region.add({10, 10, 3, 3});
  region.add({0, 0, 20, 20});
  CHECK(region.area() == 400);
  CHECK(pairwise_disjoint(region));
  CHECK(none_empty(region));
  CHECK(region.bounds() == Rect{0, 0, 20, 20});
  CHECK(region.covers(20, 20));
}

TEST_CASE("empty rects are ignored when added", "[damage]") {
  DamageRegion region;
  region.add(Rect{0, 0, 0, 10});
  region.add(Rect{0, 0, 10, -10});
  region.add(DamageRegion());
  CHECK(region.empty());
  CHECK(region.area() == 0);
  CHECK(region.bounds().empty());
}

TEST_CASE("adding a region adds each of its rects", "[damage]") {
  DamageRegion a({0, 0, 10, 10});
  DamageRegion b({5, 0, 10, 10});
  b.add({0, 20, 5, 5});
  a.add(b);
  CHECK(a.area() == 150 + 25);
  CHECK(pairwise_disjoint(a));
  a.add(a);  // adding itself is a no-op
  CHECK(a.area() == 175);
}

// ---- intersect, clip, bounds, full, covers ---------------------------------------------------

TEST_CASE("intersecting with a rect keeps only what lies inside it", "[damage]") {
  DamageRegion region({0, 0, 10, 10});
  region.add({20, 20, 10, 10});
  region.intersect({5, 5, 20, 20});
  CHECK(region.area() == 25 + 25);
  CHECK(pairwise_disjoint(region));
  CHECK(region.bounds() == Rect{5, 5, 20, 20});
  region.intersect({100, 100, 5, 5});
  CHECK(region.empty());
}

TEST_CASE("intersecting two regions keeps the pixels in both", "[damage]") {
  DamageRegion a({0, 0, 10, 10});
  a.add({20, 0, 10, 10});
  DamageRegion b({5, 5, 20, 10});
  b.add({0, 8, 2, 2});
  DamageRegion both = a.intersected(b);
  CHECK(both.area() == 25 + 25 + 4);
  CHECK(pairwise_disjoint(both));
  CHECK(none_empty(both));
  CHECK(both.area() == b.intersected(a).area());
  CHECK(a.intersected(DamageRegion()).empty());
  CHECK(DamageRegion().intersected(a).empty());
}

TEST_CASE("clipping to the surface drops what lies outside it", "[damage]") {
  DamageRegion region({-10, -10, 20, 20});
  region.add({90, 50, 20, 20});
  region.add({200, 200, 10, 10});
  region.clip(100, 60);
  CHECK(region.area() == 100 + 100);
  CHECK(region.bounds() == Rect{0, 0, 100, 60});
  for (const Rect& r : region.rects()) CHECK(Rect{0, 0, 100, 60}.contains(r));
}

TEST_CASE("bounds are the smallest rect holding every rect, empty for an empty region", "[damage]") {
  CHECK(DamageRegion().bounds().empty());
  DamageRegion region({10, 10, 5, 5});
  region.add({50, 2, 1, 1});
  region.add({0, 30, 2, 2});
  CHECK(region.bounds() == Rect{0, 2, 51, 30});
}

TEST_CASE("a full region is one rect over the whole surface", "[damage]") {
  DamageRegion full = DamageRegion::full(1920, 1080);
  REQUIRE(full.rects().size() == 1);
  CHECK(full.rects()[0] == Rect{0, 0, 1920, 1080});
  CHECK(full.area() == 1920 * 1080);
  CHECK(full.covers(1920, 1080));
  CHECK(full.covers(1280, 720));
  CHECK_FALSE(full.covers(1921, 1080));
  CHECK_FALSE(full.covers(1920, 1081));
}

TEST_CASE("a region covers a surface only when every pixel of it is damaged", "[damage]") {
  DamageRegion halves({0, 0, 50, 100});
  halves.add({50, 0, 50, 100});
  CHECK(halves.covers(100, 100));

  DamageRegion missing_one(halves);
  missing_one.intersect({0, 0, 100, 99});
  missing_one.add({0, 99, 99, 1});
  CHECK_FALSE(missing_one.covers(100, 100));

  // As much area as the surface, but shifted: the top-left pixels were never damaged.
  DamageRegion shifted({10, 10, 100, 100});
  CHECK_FALSE(shifted.covers(100, 100));
  DamageRegion outside({200, 0, 100, 100});
  CHECK_FALSE(outside.covers(100, 100));
  CHECK_FALSE(DamageRegion().covers(1, 1));
}

// ---- kMaxRects -----------------------------------------------------------------------------

TEST_CASE("a region fragmented beyond kMaxRects collapses to its bounding box", "[damage]") {
  constexpr int32_t n = int32_t(DamageRegion::kMaxRects);
  DamageRegion region;
  // One-pixel rects on every other column of one row: none touch, none merge.
  for (int32_t i = 0; i < n; ++i) region.add({2 * i, 0, 1, 1});
  REQUIRE(region.rects().size() == DamageRegion::kMaxRects);
  CHECK(region.area() == n);

  region.add({2 * n, 5, 1, 1});
  REQUIRE(region.rects().size() == 1);
  CHECK(region.rects()[0] == Rect{0, 0, 2 * n + 1, 6});
  CHECK(region.area() == int64_t(2 * n + 1) * 6);  // a superset: no damage is lost
  for (int32_t i = 0; i <= n; ++i) CHECK(region.rects()[0].contains({2 * i, i == n ? 5 : 0, 1, 1}));
}

// ---- Tile mask -----------------------------------------------------------------------------

TEST_CASE("a tile mask has enough tiles to cover a surface that is not a multiple of the tile size",
          "[damage]") {
  TileMask mask(100, 70, 16);
  CHECK(mask.tile_size() == 16);
  CHECK(mask.columns() == 7);
  CHECK(mask.rows() == 5);
  CHECK(mask.count() == 0);
  mask.set_all();
  CHECK(mask.count() == 35);

  TileMask exact(64, 32, 16);
  CHECK(exact.columns() == 4);
  CHECK(exact.rows() == 2);
}

TEST_CASE("a rect marks every tile it touches, including tiles it only reaches by one pixel", "[damage]") {
  // Crosses the corner of four tiles by one pixel each way.
  TileMask corner = DamageRegion({15, 15, 2, 2}).to_tile_mask(100, 70, 16);
  CHECK(corner.count() == 4);
  CHECK(corner.test(0, 0));
  CHECK(corner.test(1, 0));
  CHECK(corner.test(0, 1));
  CHECK(corner.test(1, 1));

  // Exactly one tile: its right and bottom edges are exclusive.
  TileMask one = DamageRegion({16, 16, 16, 16}).to_tile_mask(100, 70, 16);
  CHECK(one.count() == 1);
  CHECK(one.test(1, 1));

  // The last pixel of a tile, and the first of the next.
  TileMask last = DamageRegion({31, 0, 1, 1}).to_tile_mask(100, 70, 16);
  CHECK(last.count() == 1);
  CHECK(last.test(1, 0));
  TileMask first = DamageRegion({32, 0, 1, 1}).to_tile_mask(100, 70, 16);
  CHECK(first.count() == 1);
  CHECK(first.test(2, 0));
}

TEST_CASE("damage outside the surface marks no tiles, damage across its edge marks the edge tiles",
          "[damage]") {
  CHECK(DamageRegion({100, 0, 10, 10}).to_tile_mask(100, 70, 16).count() == 0);
  CHECK(DamageRegion({-20, -20, 10, 10}).to_tile_mask(100, 70, 16).count() == 0);
  TileMask edge = DamageRegion({90, 60, 50, 50}).to_tile_mask(100, 70, 16);
  CHECK(edge.count() == 4);
  CHECK(edge.test(5, 3));
  CHECK(edge.test(6, 3));
  CHECK(edge.test(5, 4));
  CHECK(edge.test(6, 4));
  CHECK(DamageRegion::full(100, 70).to_tile_mask(100, 70, 16).count() == 35);
}

TEST_CASE("tile runs merge neighbouring tiles of a row and are clipped to the surface", "[damage]") {
  TileMask mask(100, 70, 16);  // 7 x 5 tiles; the last column is 4 px wide, the last row 6 px high
  mask.set(1, 0);
  mask.set(2, 0);
  mask.set(3, 0);
  mask.set(5, 0);
  mask.set(6, 1);
  mask.set(0, 4);
  mask.set(5, 4);
  mask.set(6, 4);
  std::vector<Rect> runs = mask.runs();
  std::vector<Rect> expected{
      {16, 0, 48, 16},  // columns 1..3
      {80, 0, 16, 16},  // column 5 alone
      {96, 16, 4, 16},  // the narrow last column
      {0, 64, 16, 6},   // the short last row
      {80, 64, 20, 6},  // columns 5..6 of the last row: one full tile and the narrow one
  };
  CHECK(runs == expected);
}

TEST_CASE("the runs of a full mask cover the surface exactly once", "[damage]") {
  TileMask mask(100, 70, 16);
  mask.set_all();
  std::vector<Rect> runs = mask.runs();
  CHECK(runs.size() == 5);  // one per row
  DamageRegion region;
  int64_t total = 0;
  for (const Rect& r : runs) {
    total += r.area();
    region.add(r);
  }
  CHECK(total == 100 * 70);
  CHECK(region.covers(100, 70));
  CHECK(region.bounds() == Rect{0, 0, 100, 70});
}

TEST_CASE("the runs of a region's tile mask cover the region", "[damage]") {
  DamageRegion region({3, 5, 40, 2});
  region.add({70, 30, 29, 39});
  DamageRegion from_runs;
  for (const Rect& r : region.to_tile_mask(100, 70, 16).runs()) from_runs.add(r);
  CHECK(from_runs.intersected(region).area() == region.area());
  CHECK(from_runs.bounds().right() <= 100);
  CHECK(from_runs.bounds().bottom() <= 70);
}

// ---- Randomized property test ----------------------------------------------------------------

TEST_CASE("random unions and intersections agree with a pixel bitmap", "[damage][property]") {
  constexpr int32_t kWorld = 48;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> op(0, 99);
  size_t most_rects = 0;
  for (int trial = 0; trial < 300; ++trial) {
    DamageRegion region;
    PixelBitmap bitmap(kWorld, kWorld);
    for (int step = 0; step < 25; ++step) {
      int roll = op(rng);
      if (roll < 70) {
        Rect r = random_rect(rng, kWorld, 20);
        region.add(r);
        bitmap.add(r);
      } else if (roll < 80) {
        // Add a region of three overlapping rects at once.
        DamageRegion other;
        for (int k = 0; k < 3; ++k) {
          Rect r = random_rect(rng, kWorld, 16);
          other.add(r);
          bitmap.add(r);
        }
        region.add(other);
      } else if (roll < 92) {
        Rect keep = random_rect(rng, kWorld, kWorld);
        region.intersect(keep);
        bitmap.intersect(keep);
      } else {
        // Intersect with a region of two rects; the bitmap keeps pixels in either.
        Rect a = random_rect(rng, kWorld, kWorld), b = random_rect(rng, kWorld, kWorld);
        DamageRegion other(a);
        other.add(b);
        region = region.intersected(other);
        PixelBitmap in_a = bitmap, in_b = bitmap;
        in_a.intersect(a);
        in_b.intersect(b);
        bitmap = PixelBitmap(kWorld, kWorld);
        for (int32_t y = 0; y < kWorld; ++y)
          for (int32_t x = 0; x < kWorld; ++x)
            if (in_a.test(x, y) || in_b.test(x, y)) bitmap.add({x, y, 1, 1});
      }
      most_rects = std::max(most_rects, region.rects().size());
      INFO("trial " << trial << " step " << step);
      require_matches(region, bitmap);
    }
  }
  // The test means something only if the region never collapsed to its bounding box.
  CHECK(most_rects < DamageRegion::kMaxRects);
  CHECK(most_rects > 8);
}

// Found by tests/fuzz/fuzz_qemu_listener: an UpdateDMABUF of x = width = -1254804171 overflowed
// x + width on its way to being refused (UBSan). Rectangles from QEMU may hold any int32.
TEST_CASE("rects at the ends of int32 intersect, unite and contain without overflow", "[damage]") {
  constexpr int32_t kMax = std::numeric_limits<int32_t>::max(), kMin = std::numeric_limits<int32_t>::min();
  const Rect surface{0, 0, 640, 480};
  CHECK(Rect{-1254804171, 0, -1254804171, 10}.intersected(surface).empty());
  CHECK(Rect{kMax - 5, 0, kMax, 10}.intersected(surface).empty());
  CHECK(Rect{kMin, kMin, kMax, kMax}.intersected(surface).empty());
  CHECK(Rect{-10, -10, kMax, kMax}.intersected(surface) == surface);
  CHECK(Rect{600, 400, kMax, kMax}.intersected(surface) == Rect{600, 400, 40, 80});
  CHECK(!surface.contains(Rect{600, 0, kMax, 10}));
  CHECK(Rect{kMin, kMin, kMax, kMax}.contains(Rect{-5, -5, 3, 3}));
  const Rect united = Rect{kMin, 0, 10, 10}.united_bounds(Rect{kMax - 10, 0, 10, 10});
  CHECK(united.x == kMin);
  CHECK(united.width == kMax);  // clamped: the real span does not fit in int32
}
