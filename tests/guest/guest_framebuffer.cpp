#include "guest_framebuffer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/fb.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace vdistream::guest {

Framebuffer Framebuffer::open(const std::string& device, std::string& error) {
  Framebuffer fb;
  fb.fd_.reset(::open(device.c_str(), O_RDWR | O_CLOEXEC));
  if (!fb.fd_) {
    error = fmt::format("cannot open {}: {}", device, std::strerror(errno));
    return {};
  }
  fb_var_screeninfo var{};
  fb_fix_screeninfo fix{};
  if (ioctl(fb.fd_.get(), FBIOGET_VSCREENINFO, &var) != 0 || ioctl(fb.fd_.get(), FBIOGET_FSCREENINFO, &fix) != 0) {
    error = fmt::format("{}: FBIOGET_VSCREENINFO/FSCREENINFO failed: {}", device, std::strerror(errno));
    return {};
  }
  // A DRM driver's fbdev sets its mode only when someone sets the fbdev's parameters: fbcon does
  // for fb0, nobody for fb1 (the second head would stay dark). Setting them again, forced, does
  // it for every head and changes nothing where the mode is already up.
  var.activate = FB_ACTIVATE_NOW | FB_ACTIVATE_FORCE;
  if (ioctl(fb.fd_.get(), FBIOPUT_VSCREENINFO, &var) != 0 || ioctl(fb.fd_.get(), FBIOGET_VSCREENINFO, &var) != 0) {
    error = fmt::format("{}: FBIOPUT_VSCREENINFO (to set the mode) failed: {}", device, std::strerror(errno));
    return {};
  }
  const uint32_t bytes_per_pixel = var.bits_per_pixel / 8;
  if (var.bits_per_pixel != 32 && var.bits_per_pixel != 24) {
    error = fmt::format("{} is {}x{} at {} bpp; the guest draws 24 or 32 bpp (choose the mode with vga=)", device,
                        var.xres, var.yres, var.bits_per_pixel);
    return {};
  }
  if (var.red.offset != 16 || var.green.offset != 8 || var.blue.offset != 0) {
    error = fmt::format("{}: colour layout red@{} green@{} blue@{} is not XRGB/RGB (red@16 green@8 blue@0)", device,
                        var.red.offset, var.green.offset, var.blue.offset);
    return {};
  }
  if (fix.line_length < var.xres * bytes_per_pixel) {
    error = fmt::format("{}: line length {} < width {} x {} bytes", device, fix.line_length, var.xres, bytes_per_pixel);
    return {};
  }
  const size_t needed = size_t(fix.line_length) * var.yres;
  const size_t size = fix.smem_len >= needed ? fix.smem_len : needed;
  void* map = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fb.fd_.get(), 0);
  if (map == MAP_FAILED) {
    error = fmt::format("cannot map {} ({} bytes): {}", device, size, std::strerror(errno));
    return {};
  }
  fb.map_ = static_cast<uint8_t*>(map);
  fb.map_size_ = size;
  fb.width_ = int32_t(var.xres);
  fb.height_ = int32_t(var.yres);
  fb.bpp_ = int(var.bits_per_pixel);
  fb.line_length_ = fix.line_length;
  fb.canvas_.assign(size_t(fb.width_) * fb.height_ * 4, 0);
  return fb;
}

Framebuffer::~Framebuffer() {
  if (map_) munmap(map_, map_size_);
}

Framebuffer::Framebuffer(Framebuffer&& other) noexcept { *this = std::move(other); }

Framebuffer& Framebuffer::operator=(Framebuffer&& other) noexcept {
  if (this == &other) return *this;
  if (map_) munmap(map_, map_size_);
  fd_ = std::move(other.fd_);
  map_ = std::exchange(other.map_, nullptr);
  map_size_ = std::exchange(other.map_size_, 0);
  width_ = other.width_;
  height_ = other.height_;
  bpp_ = other.bpp_;
  line_length_ = other.line_length_;
  canvas_ = std::move(other.canvas_);
  return *this;
}

void Framebuffer::present(const core::DamageRegion& damage) {
  const uint32_t canvas_pitch = uint32_t(width_) * 4;
  for (const core::Rect& r : damage.rects()) {
    const core::Rect clip = r.intersected({0, 0, width_, height_});
    if (bpp_ == 32) {
      for (int32_t y = clip.y; y < clip.bottom(); ++y)
        std::memcpy(map_ + size_t(y) * line_length_ + size_t(clip.x) * 4,
                    canvas_.data() + size_t(y) * canvas_pitch + size_t(clip.x) * 4, size_t(clip.width) * 4);
      continue;
    }
    for (int32_t y = clip.y; y < clip.bottom(); ++y) {
      const uint8_t* src = canvas_.data() + size_t(y) * canvas_pitch + size_t(clip.x) * 4;
      uint8_t* dst = map_ + size_t(y) * line_length_ + size_t(clip.x) * 3;
      for (int32_t x = 0; x < clip.width; ++x, src += 4, dst += 3) {
        dst[0] = src[0];  // B
        dst[1] = src[1];  // G
        dst[2] = src[2];  // R
      }
    }
  }
}

}  // namespace vdistream::guest
