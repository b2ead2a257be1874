// Finds what really changed when a source can only say "this area may have changed" (GVT-g's
// full-frame UpdateDMABUF): compares 16x16 tiles of a CPU-readable linear buffer with a shadow
// of what the encoder was last given, and keeps that shadow current for the changed tiles only.
#pragma once

#include <cstdint>
#include <vector>

#include "core/damage.hpp"
#include "core/frame.hpp"
#include "core/mapped_buffer.hpp"

namespace vdistream::encode {

class DamageTracker {
 public:
  static constexpr int32_t kTile = 16;

  // Frames with damage_exact == false: narrows frame.damage to the tiles that differ from the
  // shadow (and marks it exact). Buffers the CPU must not read (tiled, non-RGB) keep their damage.
  // Exact frames: their damaged tiles are forgotten (the encoder converts them without us).
  void track(core::Frame& frame);
  // The encoder's picture is no longer what the shadow holds (nobody watched, an encode failed).
  void reset();

  uint64_t tiles_compared() const { return tiles_compared_; }
  uint64_t tiles_changed() const { return tiles_changed_; }
  // Frames whose every tile had to be copied into the shadow (the first inexact frame, a new
  // size, a whole-screen change): whole-picture CPU copies, for the pipeline's copy counter.
  uint64_t full_frame_copies() const { return full_frame_copies_; }

 private:
  void forget(const core::DamageRegion& damage);

  core::MappingCache mappings_{2};
  int32_t width_ = 0, height_ = 0, columns_ = 0, rows_ = 0;
  std::vector<uint8_t> shadow_;  // width_ × height_ XRGB, packed
  std::vector<uint8_t> valid_;   // per tile: does the shadow hold what the encoder has?
  uint64_t tiles_compared_ = 0, tiles_changed_ = 0, full_frame_copies_ = 0;
};

}  // namespace vdistream::encode
