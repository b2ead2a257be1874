// A pixel layout as the kernel names it: a DRM fourcc plus a format modifier.
#pragma once

#include <cstdint>
#include <string>

namespace vdistream::core {

struct PixelFormat {
  uint32_t fourcc = 0;
  uint64_t modifier = 0;  // DRM_FORMAT_MOD_LINEAR (0) unless the buffer is tiled/compressed

  // Formats we know how to describe. Single-plane RGB formats can be read by the CPU path;
  // NV12/P010 are accepted for hardware import only.
  bool known() const;
  bool linear() const;
  int plane_count() const;
  // Bytes per pixel of plane 0 (luma for YUV); 0 for an unknown fourcc.
  int bytes_per_pixel() const;
  // True for the 32-bit RGB formats the software path converts.
  bool cpu_readable_rgb() const;

  std::string name() const;  // "XRGB8888", or the fourcc as hex when unknown
  bool operator==(const PixelFormat&) const = default;
};

// A readable name for a modifier ("LINEAR", "INVALID", or hex with the vendor).
std::string modifier_name(uint64_t modifier);

// Pixman formats QEMU uses on its D-Bus display, mapped to DRM fourccs (0 if unknown).
uint32_t fourcc_from_pixman(uint32_t pixman_format);

}  // namespace vdistream::core
