// One head of the test guest: a Linux fbdev (/dev/fbN) mapped into the process. Scenes draw
// XRGB8888 into a canvas in guest RAM; present() then copies the damaged rectangles into the
// framebuffer row by row (packed as B, G, R bytes at 24 bpp). Drawing straight into video memory
// under TCG takes long enough that QEMU's refresh often caught half a frame; a burst of copies
// is what a compositor does and leaves QEMU's scan a much smaller window.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/damage.hpp"
#include "core/unique_fd.hpp"

namespace vdistream::guest {

class Framebuffer {
 public:
  // Opens and maps `device`; on failure returns an empty one and sets `error`.
  static Framebuffer open(const std::string& device, std::string& error);
  Framebuffer() = default;
  ~Framebuffer();
  Framebuffer(Framebuffer&& other) noexcept;
  Framebuffer& operator=(Framebuffer&& other) noexcept;
  Framebuffer(const Framebuffer&) = delete;
  Framebuffer& operator=(const Framebuffer&) = delete;

  bool valid() const { return map_ != nullptr; }
  int32_t width() const { return width_; }
  int32_t height() const { return height_; }
  int bpp() const { return bpp_; }

  // Where to draw XRGB8888 pixels: the canvas.
  uint8_t* draw_pixels() { return canvas_.data(); }
  uint32_t draw_pitch() const { return uint32_t(width_) * 4; }

  // Makes what was drawn inside `damage` visible.
  void present(const core::DamageRegion& damage);

 private:
  core::UniqueFd fd_;
  uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  int32_t width_ = 0, height_ = 0;
  int bpp_ = 0;
  uint32_t line_length_ = 0;
  std::vector<uint8_t> canvas_;
};

}  // namespace vdistream::guest
