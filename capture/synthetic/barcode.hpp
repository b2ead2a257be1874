// A frame-number barcode stamped into the pixels, large enough to survive lossy compression,
// and its reader. The basis of every latency measurement: the same frame is identified at the
// source and after decoding, on one clock.
#pragma once

#include <cstdint>
#include <optional>

#include "core/damage.hpp"

namespace vdistream::capture {

struct Barcode {
  static constexpr int kBlock = 16;     // pixels per bit block, both ways (one macroblock)
  static constexpr int kDataBits = 24;  // frame number modulo 2^24
  static constexpr int kCheckBits = 8;  // CRC-8 of the data bits
  // Layout in blocks: [white][black] sync, 24 data bits, 8 check bits, [black][white] end.
  static constexpr int kBlocks = 2 + kDataBits + kCheckBits + 2;
  static constexpr int kWidth = kBlocks * kBlock;
  static constexpr int kHeight = kBlock;

  // Where the barcode sits on a surface of this size (top-left corner); empty if it does not fit.
  static core::Rect area(int32_t width, int32_t height);

  // Draws the code for `value` into 32-bit XRGB pixels (BGRX bytes in memory).
  static void stamp_xrgb(uint8_t* pixels, uint32_t pitch, int32_t width, int32_t height, uint32_t value);

  // Reads it back from a luma plane (Y of I420/NV12, any range) or from XRGB pixels.
  static std::optional<uint32_t> read_luma(const uint8_t* y, uint32_t pitch, int32_t width, int32_t height);
  static std::optional<uint32_t> read_xrgb(const uint8_t* pixels, uint32_t pitch, int32_t width, int32_t height);
};

}  // namespace vdistream::capture
