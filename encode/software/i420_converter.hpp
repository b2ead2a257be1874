// Keeps an I420 picture up to date with a 32-bit RGB surface by converting only damaged tiles
// (libyuv, BT.601: limited range for the video encoders, full range for JPEG).
#pragma once

#include <cstdint>

#include "core/damage.hpp"
#include "core/frame_buffer.hpp"
#include "core/mapped_buffer.hpp"
#include "core/status.hpp"

namespace vdistream::encode {

struct I420Planes {
  uint8_t* y;
  uint8_t* u;
  uint8_t* v;
  int y_stride, u_stride, v_stride;
};

class I420Converter {
 public:
  // Tiles are 16×16 so every run starts on even coordinates (chroma is subsampled 2×2).
  static constexpr int32_t kTile = 16;

  enum class Range { Limited, Full };
  explicit I420Converter(Range range = Range::Limited) : range_(range) {}

  // Converts the set tiles of `changed` (kTile-sized, over the buffer's size) from `buffer` into
  // `out`. Returns the number of tiles converted.
  core::Result<uint64_t> convert(const core::FrameBuffer& buffer, const core::TileMask& changed, const I420Planes& out);

  core::MappingCache& mappings() { return mappings_; }

 private:
  Range range_;
  core::MappingCache mappings_;
};

}  // namespace vdistream::encode
