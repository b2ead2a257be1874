// QEMU's own surface shared as a memfd (QEMU ≥ 9.2, org.qemu.Display1.Listener.Unix.Map):
// ScanoutMap hands the fd once, UpdateMap names the rectangles QEMU changed in it; no pixels
// cross the socket. Frames point into that memory: nothing is copied for them. Damage is refined
// as for pixels by value, against a core::TileMirror of what the consumers were last given: it
// costs a copy of the tiles that changed (the same the SPICE server in QEMU makes in its own
// mirror), never of the picture, and the mirror fills lazily.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/damage.hpp"
#include "core/frame_buffer.hpp"
#include "core/log.hpp"
#include "core/mapped_buffer.hpp"
#include "core/status.hpp"
#include "core/tile_diff.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::capture::qemu {

class SharedMap {
 public:
  explicit SharedMap(const core::Logger& log) : log_(log) {}

  // Validates the descriptor (format, stride, offset and size against the fd, like any
  // FrameBuffer) and maps it for reading. On failure nothing is current.
  core::Status scanout(core::UniqueFd fd, uint32_t offset, uint32_t width, uint32_t height, uint32_t stride,
                       uint32_t pixman_format);
  // QEMU changed `rect` (clipped to the surface; an error when nothing of it is inside): the
  // tiles that really changed are set in `changed`.
  core::Status update(const core::Rect& rect, core::TileMask& changed, core::TileDiffCounters& counters);
  void reset();

  const core::FrameBufferPtr& buffer() const { return buffer_; }

 private:
  core::Logger log_;
  core::FrameBufferPtr buffer_;
  std::shared_ptr<core::MappedBuffer> map_;
  core::TileMirror mirror_;
  bool warned_unsealed_ = false;
};

}  // namespace vdistream::capture::qemu
