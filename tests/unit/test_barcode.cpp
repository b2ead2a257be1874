#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "capture/synthetic/barcode.hpp"

using vdistream::capture::Barcode;

namespace {

constexpr int32_t kWidth = 640, kHeight = 32;
constexpr uint32_t kPitch = kWidth * 4;

// A grey XRGB picture with the code for `value` stamped into it.
std::vector<uint8_t> stamped(uint32_t value) {
  std::vector<uint8_t> pixels(size_t(kPitch) * kHeight);
  for (size_t i = 0; i < pixels.size(); i += 4) {
    pixels[i] = pixels[i + 1] = pixels[i + 2] = 128;
    pixels[i + 3] = 0xff;
  }
  Barcode::stamp_xrgb(pixels.data(), kPitch, kWidth, kHeight, value);
  return pixels;
}

// The Y plane of an XRGB picture, full range or squeezed into 16..235 as video decoders give it.
std::vector<uint8_t> luma_of(const std::vector<uint8_t>& xrgb, bool limited_range) {
  std::vector<uint8_t> y(size_t(kWidth) * kHeight);
  for (size_t i = 0; i < y.size(); ++i) {
    const uint8_t* p = &xrgb[i * 4];
    int full = (p[2] * 77 + p[1] * 150 + p[0] * 29) >> 8;
    y[i] = uint8_t(limited_range ? 16 + full * 219 / 255 : full);
  }
  return y;
}

// What a lossy codec does to it, roughly: a 3x3 box blur, then noise of up to +-20 levels.
void degrade(std::vector<uint8_t>& plane, int32_t width, int32_t height, uint32_t seed) {
  std::vector<uint8_t> blurred(plane.size());
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x) {
      int sum = 0, n = 0;
      for (int32_t dy = -1; dy <= 1; ++dy)
        for (int32_t dx = -1; dx <= 1; ++dx) {
          int32_t sx = x + dx, sy = y + dy;
          if (sx < 0 || sy < 0 || sx >= width || sy >= height) continue;
          sum += plane[size_t(sy) * size_t(width) + size_t(sx)];
          ++n;
        }
      blurred[size_t(y) * size_t(width) + size_t(x)] = uint8_t(sum / n);
    }
  uint32_t state = seed * 2654435761u + 1;
  for (size_t i = 0; i < plane.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    int noise = int(state >> 24) % 41 - 20;
    plane[i] = uint8_t(std::clamp(blurred[i] + noise, 0, 255));
  }
}

std::vector<uint32_t> sample_values() {
  std::vector<uint32_t> values{0, 1, 2, 0x800000, 0xaaaaaa, 0x555555, 0xfffffe, 0xffffff};
  uint32_t v = 12345;
  for (int i = 0; i < 120; ++i) {
    v = v * 1103515245u + 12345u;
    values.push_back(v & 0xffffff);
  }
  return values;
}

}  // namespace

TEST_CASE("a stamped barcode reads back as the same number from XRGB pixels") {
  for (uint32_t value : sample_values()) {
    auto pixels = stamped(value);
    INFO("value " << value);
    REQUIRE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight) == value);
  }
}

TEST_CASE("a stamped barcode reads back from a full-range or limited-range luma plane") {
  for (uint32_t value : sample_values()) {
    auto pixels = stamped(value);
    INFO("value " << value);
    REQUIRE(Barcode::read_luma(luma_of(pixels, false).data(), kWidth, kWidth, kHeight) == value);
    REQUIRE(Barcode::read_luma(luma_of(pixels, true).data(), kWidth, kWidth, kHeight) == value);
  }
}

TEST_CASE("a barcode still reads right after blur and noise of 20 levels") {
  uint32_t seed = 1;
  for (uint32_t value : sample_values()) {
    INFO("value " << value);
    auto y = luma_of(stamped(value), true);
    degrade(y, kWidth, kHeight, seed++);
    REQUIRE(Barcode::read_luma(y.data(), kWidth, kWidth, kHeight) == value);

    auto pixels = stamped(value);
    for (size_t channel = 0; channel < 3; ++channel) {  // independent noise upsets the colours too
      std::vector<uint8_t> plane(size_t(kWidth) * kHeight);
      for (size_t i = 0; i < plane.size(); ++i) plane[i] = pixels[i * 4 + channel];
      degrade(plane, kWidth, kHeight, seed++);
      for (size_t i = 0; i < plane.size(); ++i) pixels[i * 4 + channel] = plane[i];
    }
    REQUIRE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight) == value);
  }
}

TEST_CASE("the barcode keeps the low 24 bits of the frame number") {
  auto pixels = stamped((1u << 24) + 77);
  REQUIRE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight) == 77u);
}

TEST_CASE("a damaged or absent barcode reads as nothing") {
  auto invert_block = [](std::vector<uint8_t>& pixels, int block) {
    for (int32_t y = 0; y < Barcode::kBlock; ++y)
      for (int32_t x = block * Barcode::kBlock; x < (block + 1) * Barcode::kBlock; ++x)
        for (int c = 0; c < 3; ++c) pixels[size_t(y) * kPitch + size_t(x) * 4 + size_t(c)] ^= 0xff;
  };
  SECTION("one data bit flipped fails the check") {
    for (int block = 2; block < 2 + Barcode::kDataBits; ++block) {
      auto pixels = stamped(0x123456);
      invert_block(pixels, block);
      INFO("block " << block);
      REQUIRE_FALSE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight).has_value());
    }
  }
  SECTION("one check bit flipped fails the check") {
    auto pixels = stamped(0x123456);
    invert_block(pixels, 2 + Barcode::kDataBits + 3);
    REQUIRE_FALSE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight).has_value());
  }
  SECTION("wrong end blocks are refused") {
    auto pixels = stamped(0x123456);
    invert_block(pixels, Barcode::kBlocks - 1);
    REQUIRE_FALSE(Barcode::read_xrgb(pixels.data(), kPitch, kWidth, kHeight).has_value());
  }
  SECTION("a flat picture has no barcode") {
    std::vector<uint8_t> grey(size_t(kPitch) * kHeight, 128);
    REQUIRE_FALSE(Barcode::read_xrgb(grey.data(), kPitch, kWidth, kHeight).has_value());
    std::vector<uint8_t> y(size_t(kWidth) * kHeight, 16);
    REQUIRE_FALSE(Barcode::read_luma(y.data(), kWidth, kWidth, kHeight).has_value());
  }
}

TEST_CASE("a surface too small for the barcode gets no barcode area and is left alone") {
  REQUIRE(Barcode::area(Barcode::kWidth, Barcode::kHeight) ==
          vdistream::core::Rect{0, 0, Barcode::kWidth, Barcode::kHeight});
  REQUIRE(Barcode::area(1920, 1080) == vdistream::core::Rect{0, 0, Barcode::kWidth, Barcode::kHeight});
  REQUIRE(Barcode::area(Barcode::kWidth - 1, 1080).empty());
  REQUIRE(Barcode::area(1920, Barcode::kHeight - 1).empty());

  constexpr int32_t kSmallWidth = Barcode::kWidth - 8;
  std::vector<uint8_t> pixels(size_t(kSmallWidth) * 4 * kHeight, 0x42);
  Barcode::stamp_xrgb(pixels.data(), kSmallWidth * 4, kSmallWidth, kHeight, 99);
  REQUIRE(std::all_of(pixels.begin(), pixels.end(), [](uint8_t b) { return b == 0x42; }));
  REQUIRE_FALSE(Barcode::read_xrgb(pixels.data(), kSmallWidth * 4, kSmallWidth, kHeight).has_value());
}
