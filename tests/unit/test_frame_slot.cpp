#include <catch2/catch.hpp>

#include <drm_fourcc.h>

#include <chrono>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "core/frame_slot.hpp"

namespace core = vdistream::core;
using namespace std::chrono_literals;
using core::DamageRegion;
using core::Frame;
using core::FrameSlot;
using core::Rect;

namespace {

core::FrameBufferPtr allocate(int32_t width, int32_t height) {
  auto fb = core::FrameBuffer::allocate_memfd(width, height, DRM_FORMAT_XRGB8888, "test-frame-slot");
  REQUIRE(fb.ok());
  return *fb;
}

Frame make_frame(const core::FrameBufferPtr& buffer, uint64_t sequence, const Rect& damage) {
  Frame f;
  f.buffer = buffer;
  f.sequence = sequence;
  f.damage = DamageRegion(damage);
  return f;
}

std::chrono::steady_clock::time_point in(std::chrono::steady_clock::duration d) {
  return std::chrono::steady_clock::now() + d;
}

bool region_covers(const DamageRegion& region, const Rect& r) {
  return DamageRegion(r).intersected(region).area() == r.area();
}

}  // namespace

TEST_CASE("a frame put into the slot is taken once", "[frame_slot]") {
  auto buffer = allocate(64, 64);
  FrameSlot slot;
  CHECK_FALSE(slot.try_take().has_value());
  CHECK_FALSE(slot.put(make_frame(buffer, 1, {0, 0, 8, 8})));
  auto f = slot.try_take();
  REQUIRE(f.has_value());
  CHECK(f->sequence == 1);
  CHECK(f->buffer == buffer);
  CHECK(f->damage.area() == 64);
  CHECK_FALSE(slot.try_take().has_value());
  CHECK(slot.replaced() == 0);
}

TEST_CASE("a frame already in the slot is returned by take_until at once", "[frame_slot]") {
  auto buffer = allocate(64, 64);
  FrameSlot slot;
  slot.put(make_frame(buffer, 7, {0, 0, 1, 1}));
  // A deadline already in the past: the frame is there, so it is returned rather than a timeout.
  auto f = slot.take_until(std::chrono::steady_clock::now() - 1s);
  REQUIRE(f.has_value());
  CHECK(f->sequence == 7);
}

TEST_CASE("a second put before take replaces the frame and merges both damages", "[frame_slot]") {
  auto buffer = allocate(64, 64);
  FrameSlot slot;
  CHECK_FALSE(slot.put(make_frame(buffer, 1, {0, 0, 10, 10})));
  CHECK(slot.put(make_frame(buffer, 2, {5, 5, 10, 10})));
  CHECK(slot.replaced() == 1);
  CHECK(slot.put(make_frame(buffer, 3, {40, 40, 4, 4})));
  CHECK(slot.replaced() == 2);

  auto f = slot.try_take();
  REQUIRE(f.has_value());
  CHECK(f->sequence == 3);  // the newest frame wins
  CHECK(f->damage.area() == 100 + 100 - 25 + 16);
  CHECK(region_covers(f->damage, {0, 0, 10, 10}));
  CHECK(region_covers(f->damage, {5, 5, 10, 10}));
  CHECK(region_covers(f->damage, {40, 40, 4, 4}));
  CHECK_FALSE(slot.try_take().has_value());

  // Once taken, the next put replaces nothing.
  CHECK_FALSE(slot.put(make_frame(buffer, 4, {0, 0, 1, 1})));
  CHECK(slot.replaced() == 2);
  auto g = slot.try_take();
  REQUIRE(g.has_value());
  CHECK(g->damage.area() == 1);
}

TEST_CASE("a frame of a different size replaces the old one without merging its damage", "[frame_slot]") {
  auto big = allocate(64, 64);
  auto small = allocate(32, 16);
  FrameSlot slot;
  slot.put(make_frame(big, 1, {40, 40, 20, 20}));
  CHECK(slot.put(make_frame(small, 2, {0, 0, 32, 16})));
  CHECK(slot.replaced() == 1);
  auto f = slot.try_take();
  REQUIRE(f.has_value());
  CHECK(f->sequence == 2);
  CHECK(f->width() == 32);
  CHECK(f->damage.area() == 32 * 16);
  CHECK(f->damage.bounds() == Rect{0, 0, 32, 16});
}

TEST_CASE("take_until on an empty slot times out with nothing", "[frame_slot]") {
  FrameSlot slot;
  CHECK_FALSE(slot.take_until(in(20ms)).has_value());
  CHECK_FALSE(slot.take_until(std::chrono::steady_clock::now()).has_value());
}

TEST_CASE("wake makes a waiting take_until return early with nothing", "[frame_slot]") {
  FrameSlot slot;
  std::optional<Frame> result;
  bool returned = false;
  // The deadline is far away: if wake() were lost, this would hang until ctest's timeout.
  std::thread taker([&] {
    result = slot.take_until(in(30s));
    returned = true;
  });
  slot.wake();
  taker.join();
  CHECK(returned);
  CHECK_FALSE(result.has_value());
  CHECK_FALSE(slot.closed());

  // A wake is used up by the take it ended: the next one waits again (and times out here).
  CHECK_FALSE(slot.take_until(in(10ms)).has_value());

  // And the slot still works.
  auto buffer = allocate(16, 16);
  slot.put(make_frame(buffer, 9, {0, 0, 1, 1}));
  auto f = slot.take_until(in(30s));
  REQUIRE(f.has_value());
  CHECK(f->sequence == 9);
}

TEST_CASE("a frame put while take_until waits is returned to it", "[frame_slot]") {
  auto buffer = allocate(16, 16);
  FrameSlot slot;
  std::optional<Frame> result;
  std::thread taker([&] { result = slot.take_until(in(30s)); });
  slot.put(make_frame(buffer, 5, {0, 0, 2, 2}));
  taker.join();
  REQUIRE(result.has_value());
  CHECK(result->sequence == 5);
}

TEST_CASE("close wakes a waiting take_until for good", "[frame_slot]") {
  FrameSlot slot;
  std::optional<Frame> result;
  std::thread taker([&] { result = slot.take_until(in(30s)); });
  slot.close();
  taker.join();
  CHECK_FALSE(result.has_value());
  CHECK(slot.closed());
  // Closed stays closed: later takes do not wait.
  CHECK_FALSE(slot.take_until(in(30s)).has_value());
  CHECK_FALSE(slot.take_until(in(30s)).has_value());
}

TEST_CASE("a frame put before close is still delivered", "[frame_slot]") {
  auto buffer = allocate(16, 16);
  FrameSlot slot;
  slot.put(make_frame(buffer, 3, {0, 0, 4, 4}));
  slot.close();
  auto f = slot.take_until(in(30s));
  REQUIRE(f.has_value());
  CHECK(f->sequence == 3);
  CHECK_FALSE(slot.take_until(in(30s)).has_value());
}

TEST_CASE("latest wins never loses damage when a fast producer meets a slow consumer", "[frame_slot]") {
  constexpr int32_t kSize = 256;
  constexpr uint64_t kFrames = 10000;
  auto buffer = allocate(kSize, kSize);

  // Every rect the producer will put, decided up front so the check needs no locking.
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> pos(0, kSize - 1), extent(1, 24);
  std::vector<Rect> put_damage;
  put_damage.reserve(kFrames);
  for (uint64_t i = 0; i < kFrames; ++i) {
    Rect r{pos(rng), pos(rng), extent(rng), extent(rng)};
    put_damage.push_back(r.intersected({0, 0, kSize, kSize}));
  }

  FrameSlot slot;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kFrames; ++i) slot.put(make_frame(buffer, i + 1, put_damage[i]));
    slot.close();
  });

  // The consumer checks each frame it takes against the damage of every frame put since the one
  // it took before: those were replaced, so this frame must carry their damage. That is stronger
  // than checking the union of everything received, which it implies.
  std::vector<uint64_t> sequences;
  uint64_t last_taken = 0;
  uint64_t lost = 0;
  for (;;) {
    std::optional<Frame> f = slot.take_until(in(30s));
    if (!f) {
      if (slot.closed()) break;
      continue;
    }
    sequences.push_back(f->sequence);
    for (uint64_t s = last_taken + 1; s <= f->sequence && s <= kFrames; ++s) {
      if (!region_covers(f->damage, put_damage[s - 1])) {
        if (lost == 0) WARN("frame " << s << " damage " << put_damage[s - 1].to_string() << " missing from frame "
                                     << f->sequence << " damage " << f->damage.to_string());
        ++lost;
      }
    }
    last_taken = f->sequence;
    std::this_thread::sleep_for(200us);  // a slow encoder, not synchronisation
  }
  producer.join();

  INFO("frames taken: " << sequences.size() << ", replaced: " << slot.replaced());
  REQUIRE_FALSE(sequences.empty());
  CHECK(sequences.back() == kFrames);  // the newest frame always arrives
  for (size_t i = 1; i < sequences.size(); ++i) REQUIRE(sequences[i] > sequences[i - 1]);
  // Every frame put was either taken or replaced by a newer one.
  CHECK(sequences.size() + slot.replaced() == kFrames);
  // The scenario happened: the consumer was slow enough for frames to be merged. (With 200 us per
  // take against a producer that never waits, it takes a few hundred of the 10000 frames.)
  CHECK(slot.replaced() > 0);
  CHECK(lost == 0);
}
