// Damage refinement: the tiles of an area that really changed, against the surface itself or a
// lazily filled mirror.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "core/tile_diff.hpp"

using namespace vdistream::core;

namespace {

struct Picture {
  int32_t width, height;
  std::vector<uint8_t> px;
  Picture(int32_t w, int32_t h, uint8_t fill) : width(w), height(h), px(size_t(w) * h * 4, fill) {}
  size_t pitch() const { return size_t(width) * 4; }
  void set(int32_t x, int32_t y, uint32_t v) { std::memcpy(&px[size_t(y) * pitch() + size_t(x) * 4], &v, 4); }
  uint32_t get(int32_t x, int32_t y) const {
    uint32_t v;
    std::memcpy(&v, &px[size_t(y) * pitch() + size_t(x) * 4], 4);
    return v;
  }
};

}  // namespace

TEST_CASE("write_changed_tiles writes only the tiles of a band that differ and names them") {
  Picture surface(100, 40, 0);
  // A full-width band of rows 10..19, holding the surface's pixels except at (50, 12) and (99, 19).
  Picture band(100, 10, 0);
  band.set(50, 2, 0x11223344);
  band.set(99, 9, 0x55667788);
  TileMask changed(100, 40, 16);
  TileDiffCounters counters;
  write_changed_tiles({0, 10, 100, 10}, band.px.data(), band.pitch(), surface.px.data(), surface.pitch(), changed,
                      counters);
  CHECK(changed.count() == 2);
  CHECK(changed.test(3, 0));  // x 48..63, rows 0..15
  CHECK(changed.test(6, 1));  // x 96..99 (the edge tile), rows 16..31
  CHECK(surface.get(50, 12) == 0x11223344u);
  CHECK(surface.get(99, 19) == 0x55667788u);
  CHECK(counters.tiles_compared == 14);  // 7 columns × 2 tile rows the band touches
  CHECK(counters.tiles_changed == 2);
  // Copied: the first tile's rows 12..15 of 16 px (from its first differing row), the edge tile's last row of 4 px.
  CHECK(counters.bytes_copied == 4 * 16 * 4 + 1 * 4 * 4);
  REQUIRE(changed.rects().size() == 2);
}

TEST_CASE("a mirror takes a tile whole the first time, then reports only real changes") {
  Picture picture(64, 32, 7);
  TileMirror mirror;
  mirror.reset(64, 32);
  TileDiffCounters counters;
  TileMask first = mirror.empty_mask();
  mirror.refine(picture.px.data(), picture.pitch(), {0, 4, 64, 2}, first, counters);
  CHECK(first.count() == 4);  // never looked at: reported, and taken whole
  CHECK(counters.bytes_copied == 64 * 16 * 4);

  // Rows 8..15 of those tiles were taken with them: a change there is found by a later band.
  picture.set(20, 12, 0xdeadbeef);
  TileMask second = mirror.empty_mask();
  mirror.refine(picture.px.data(), picture.pitch(), {0, 10, 64, 4}, second, counters);
  CHECK(second.count() == 1);
  CHECK(second.test(1, 0));
  TileMask third = mirror.empty_mask();
  mirror.refine(picture.px.data(), picture.pitch(), {0, 0, 64, 16}, third, counters);
  CHECK(third.count() == 0);

  mirror.forget(DamageRegion(Rect{0, 0, 16, 16}));
  TileMask after_forget = mirror.empty_mask();
  mirror.refine(picture.px.data(), picture.pitch(), {0, 0, 64, 16}, after_forget, counters);
  CHECK(after_forget.count() == 1);
  CHECK(after_forget.test(0, 0));
}

TEST_CASE("tile masks become few rectangles: equal runs of consecutive rows merge") {
  TileMask mask(160, 96, 16);
  for (int32_t row = 1; row <= 4; ++row)
    for (int32_t col = 2; col <= 5; ++col) mask.set(col, row);  // a 64x64 window at (32, 16)
  mask.set(9, 5);  // one tile at the right edge
  mask.set(0, 2);
  auto rects = mask.rects();
  REQUIRE(rects.size() == 3);
  CHECK(rects[0] == Rect{32, 16, 64, 64});
  CHECK(rects[1] == Rect{0, 32, 16, 16});
  CHECK(rects[2] == Rect{144, 80, 16, 16});
  CHECK(mask.to_region().area() == 64 * 64 + 2 * 16 * 16);
  // Clipped to the surface at its edges.
  TileMask edge(20, 20, 16);
  edge.set(1, 1);
  REQUIRE(edge.rects().size() == 1);
  CHECK(edge.rects()[0] == Rect{16, 16, 4, 4});
}
