#include "core/pixel_format.hpp"

#include <drm_fourcc.h>
#include <fmt/format.h>

namespace vdistream::core {

namespace {

struct FormatInfo {
  uint32_t fourcc;
  const char* name;
  int planes;
  int bpp;
  bool rgb;
};

constexpr FormatInfo kFormats[] = {
    {DRM_FORMAT_XRGB8888, "XRGB8888", 1, 4, true},
    {DRM_FORMAT_ARGB8888, "ARGB8888", 1, 4, true},
    {DRM_FORMAT_XBGR8888, "XBGR8888", 1, 4, true},
    {DRM_FORMAT_ABGR8888, "ABGR8888", 1, 4, true},
    {DRM_FORMAT_NV12, "NV12", 2, 1, false},
    {DRM_FORMAT_P010, "P010", 2, 2, false},
};

const FormatInfo* find(uint32_t fourcc) {
  for (const auto& f : kFormats)
    if (f.fourcc == fourcc) return &f;
  return nullptr;
}

}  // namespace

bool PixelFormat::known() const { return find(fourcc) != nullptr; }
bool PixelFormat::linear() const { return modifier == DRM_FORMAT_MOD_LINEAR; }
int PixelFormat::plane_count() const {
  const auto* f = find(fourcc);
  return f ? f->planes : 0;
}
int PixelFormat::bytes_per_pixel() const {
  const auto* f = find(fourcc);
  return f ? f->bpp : 0;
}
bool PixelFormat::cpu_readable_rgb() const {
  const auto* f = find(fourcc);
  return f && f->rgb;
}

std::string PixelFormat::name() const {
  if (const auto* f = find(fourcc)) return f->name;
  char c[4] = {char(fourcc & 0xff), char((fourcc >> 8) & 0xff), char((fourcc >> 16) & 0xff),
               char((fourcc >> 24) & 0xff)};
  bool printable = true;
  for (char ch : c) printable = printable && ch >= 0x20 && ch < 0x7f;
  if (printable) return fmt::format("unknown fourcc '{}{}{}{}' (0x{:08x})", c[0], c[1], c[2], c[3], fourcc);
  return fmt::format("unknown fourcc 0x{:08x}", fourcc);
}

std::string modifier_name(uint64_t modifier) {
  if (modifier == DRM_FORMAT_MOD_LINEAR) return "LINEAR";
  if (modifier == DRM_FORMAT_MOD_INVALID) return "INVALID";
  return fmt::format("0x{:016x} (vendor 0x{:02x})", modifier, unsigned(modifier >> 56));
}

uint32_t fourcc_from_pixman(uint32_t pixman_format) {
  switch (pixman_format) {
    case 0x20020888: return DRM_FORMAT_XRGB8888;  // x8r8g8b8
    case 0x20028888: return DRM_FORMAT_ARGB8888;  // a8r8g8b8
    case 0x20030888: return DRM_FORMAT_XBGR8888;  // x8b8g8r8
    case 0x20038888: return DRM_FORMAT_ABGR8888;  // a8b8g8r8
    default: return 0;
  }
}

}  // namespace vdistream::core
