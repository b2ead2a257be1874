// The damage tracker: full-frame "maybe changed" updates become the tiles that really changed.
#include <catch2/catch.hpp>

#include <drm_fourcc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/mapped_buffer.hpp"
#include "encode/damage_tracker.hpp"

using namespace vdistream;

namespace {

struct Surface {
  core::FrameBufferPtr buffer;
  std::shared_ptr<core::MappedBuffer> map;

  Surface(int32_t w, int32_t h) {
    buffer = *core::FrameBuffer::allocate_memfd(w, h, DRM_FORMAT_XRGB8888, "tracker-test");
    map = *core::MappedBuffer::map(*buffer, core::MappedBuffer::Access::ReadWrite);
  }
  void set(int32_t x, int32_t y, uint32_t value) {
    std::memcpy(map->writable_data() + size_t(y) * map->pitch() + size_t(x) * 4, &value, 4);
  }
  core::Frame frame(bool exact, core::Rect damage) const {
    core::Frame f;
    f.buffer = buffer;
    f.damage = core::DamageRegion(damage);
    f.damage_exact = exact;
    return f;
  }
  core::Frame full_inexact() const { return frame(false, {0, 0, buffer->width(), buffer->height()}); }
};

}  // namespace

TEST_CASE("the first inexact frame is damaged everywhere, an unchanged one nowhere") {
  Surface s(100, 50);
  encode::DamageTracker tracker;
  core::Frame first = s.full_inexact();
  tracker.track(first);
  CHECK(first.damage.covers(100, 50));
  CHECK(first.damage_exact);

  core::Frame again = s.full_inexact();
  tracker.track(again);
  CHECK(again.damage.empty());
  // Filling the shadow the first time copied the whole picture; the unchanged frame copied nothing.
  CHECK(tracker.full_frame_copies() == 1);
}

TEST_CASE("a changed pixel damages exactly its 16x16 tile") {
  Surface s(100, 50);
  encode::DamageTracker tracker;
  core::Frame first = s.full_inexact();
  tracker.track(first);

  s.set(37, 20, 0x00ff0000);
  core::Frame changed = s.full_inexact();
  tracker.track(changed);
  REQUIRE(changed.damage.rects().size() == 1);
  CHECK(changed.damage.rects()[0] == core::Rect{32, 16, 16, 16});

  // The shadow learnt the new tile: the same picture again is unchanged.
  core::Frame same = s.full_inexact();
  tracker.track(same);
  CHECK(same.damage.empty());

  // Edge tiles are clipped to the surface.
  s.set(99, 49, 0x0000ff00);
  core::Frame corner = s.full_inexact();
  tracker.track(corner);
  REQUIRE(corner.damage.rects().size() == 1);
  CHECK(corner.damage.rects()[0] == core::Rect{96, 48, 4, 2});
}

TEST_CASE("only tiles inside the reported damage are compared") {
  Surface s(64, 64);
  encode::DamageTracker tracker;
  core::Frame first = s.full_inexact();
  tracker.track(first);
  s.set(5, 5, 0xffffffff);    // outside the reported rectangle
  s.set(40, 40, 0xffffffff);  // inside
  core::Frame part = s.frame(false, {32, 32, 32, 32});
  tracker.track(part);
  REQUIRE(part.damage.rects().size() == 1);
  CHECK(part.damage.rects()[0] == core::Rect{32, 32, 16, 16});
  CHECK(tracker.tiles_compared() == 16 + 4);
}

TEST_CASE("tiles an exact frame damaged are compared again later") {
  Surface s(64, 32);
  encode::DamageTracker tracker;
  core::Frame first = s.full_inexact();
  tracker.track(first);
  // An exact frame went to the encoder without the tracker copying it.
  s.set(20, 3, 0x12345678);
  core::Frame exact = s.frame(true, {16, 0, 16, 16});
  tracker.track(exact);
  CHECK(exact.damage.rects().size() == 1);  // exact damage is left alone
  // Even with identical pixels since, the tile is reported once: the shadow did not see it.
  core::Frame next = s.full_inexact();
  tracker.track(next);
  REQUIRE(next.damage.rects().size() == 1);
  CHECK(next.damage.rects()[0] == core::Rect{16, 0, 16, 16});
}

TEST_CASE("reset and a size change make the next frame fully damaged") {
  Surface s(48, 48);
  encode::DamageTracker tracker;
  core::Frame first = s.full_inexact();
  tracker.track(first);
  tracker.reset();
  core::Frame after_reset = s.full_inexact();
  tracker.track(after_reset);
  CHECK(after_reset.damage.covers(48, 48));

  Surface bigger(80, 48);
  core::Frame resized = bigger.full_inexact();
  tracker.track(resized);
  CHECK(resized.damage.covers(80, 48));
}

TEST_CASE("a tiled buffer passes with the damage it came with") {
  const int32_t w = 64, h = 64;
  core::UniqueFd fd(memfd_create("tiled", MFD_CLOEXEC));
  REQUIRE(ftruncate(fd.get(), w * h * 4) == 0);
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  planes[0] = core::Plane{std::move(fd), 0, uint32_t(w * 4)};
  auto tiled = core::FrameBuffer::create(w, h, {DRM_FORMAT_XRGB8888, I915_FORMAT_MOD_X_TILED}, std::move(planes), 1);
  REQUIRE(tiled.ok());
  encode::DamageTracker tracker;
  for (int i = 0; i < 2; ++i) {
    core::Frame f;
    f.buffer = *tiled;
    f.damage = core::DamageRegion::full(w, h);
    f.damage_exact = false;
    tracker.track(f);
    CHECK(f.damage.covers(w, h));
  }
  CHECK(tracker.tiles_compared() == 0);
}
