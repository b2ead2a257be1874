#include "encode/damage_tracker.hpp"

namespace vdistream::encode {

void DamageTracker::track(core::Frame& frame) {
  if (!frame.buffer) return;
  const int32_t width = frame.width(), height = frame.height();
  if (width != mirror_.width() || height != mirror_.height()) mirror_.reset(width, height);
  if (frame.damage_exact) {
    mirror_.forget(frame.damage);
    return;
  }
  if (!frame.buffer->check_cpu_readable()) {  // tiled or not RGB: pass with the damage it has
    mirror_.forget(frame.damage);
    return;
  }
  auto mapped = mappings_.get(*frame.buffer);
  if (!mapped) {
    mirror_.forget(frame.damage);
    return;
  }
  const core::MappedBuffer& map = **mapped;
  core::MappedBuffer::CpuAccess access(map);
  core::TileMask changed = mirror_.empty_mask();
  for (const core::Rect& r : frame.damage.rects()) mirror_.refine(map.data(), map.pitch(), r, changed, counters_);
  if (changed.count() == size_t(changed.columns()) * size_t(changed.rows())) ++full_frame_copies_;
  frame.damage = changed.to_region();
  frame.damage_exact = true;
}

}  // namespace vdistream::encode
