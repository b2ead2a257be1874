// Finds what really changed when a source can only say "this area may have changed" (GVT-g's
// full-frame UpdateDMABUF): a core::TileMirror of what the encoder was last given, compared in
// the tiles the source named, kept current for the changed tiles only.
#pragma once

#include <cstdint>

#include "core/frame.hpp"
#include "core/mapped_buffer.hpp"
#include "core/tile_diff.hpp"

namespace vdistream::encode {

class DamageTracker {
 public:
  static constexpr int32_t kTile = core::TileMirror::kTile;

  // Frames with damage_exact == false: narrows frame.damage to the tiles that differ from the
  // mirror (and marks it exact). Buffers the CPU must not read (tiled, non-RGB) keep their damage.
  // Exact frames: their damaged tiles are forgotten (the encoder converts them without us).
  void track(core::Frame& frame);
  // The encoder's picture is no longer what the mirror holds (nobody watched, an encode failed).
  void reset() { mirror_.forget(); }

  uint64_t tiles_compared() const { return counters_.tiles_compared; }
  uint64_t tiles_changed() const { return counters_.tiles_changed; }
  // Frames whose every tile had to be copied into the mirror (the first inexact frame, a new
  // size, a whole-screen change): whole-picture CPU copies, for the pipeline's copy counter.
  uint64_t full_frame_copies() const { return full_frame_copies_; }

 private:
  core::MappingCache mappings_{2};
  core::TileMirror mirror_;
  core::TileDiffCounters counters_;
  uint64_t full_frame_copies_ = 0;
};

}  // namespace vdistream::encode
