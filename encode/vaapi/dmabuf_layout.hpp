// A FrameBuffer described as GPU import APIs want it: distinct memory objects (planes that
// share one buffer share one object) and, per plane, which object, at what offset and pitch.
// FFmpeg's AVDRMFrameDescriptor and libva's VADRMPRIMESurfaceDescriptor are both built from it.
#pragma once

#include <array>
#include <cstdint>

#include "core/frame_buffer.hpp"
#include "core/status.hpp"

namespace vdistream::encode {

struct DmaBufLayout {
  struct Object {
    int fd = -1;      // borrowed from the FrameBuffer: valid while it lives
    uint64_t size = 0;
    uint64_t modifier = 0;
  };
  struct PlaneRef {
    int object_index = 0;
    uint32_t offset = 0;
    uint32_t pitch = 0;
  };
  uint32_t drm_fourcc = 0;
  int32_t width = 0, height = 0;
  int object_count = 0;
  std::array<Object, core::FrameBuffer::kMaxPlanes> objects{};
  int plane_count = 0;
  std::array<PlaneRef, core::FrameBuffer::kMaxPlanes> planes{};
};

// Planes whose fds name the same file (same st_dev/st_ino, as QEMU and drivers hand out one
// dma-buf per plane) become one object. Errors name the plane that could not be inspected.
core::Result<DmaBufLayout> describe_dmabuf(const core::FrameBuffer& buffer);

}  // namespace vdistream::encode
