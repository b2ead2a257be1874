// The furniture every synthetic workload shares: wallpaper, taskbar, windows, greeked text.
#pragma once

#include <cstdint>
#include <vector>

#include "capture/synthetic/canvas.hpp"
#include "core/damage.hpp"

namespace vdistream::capture::synth {

// Greeked text: each character a deterministic pattern of strokes in an 8x16 cell, so text
// looks like text to an encoder (sharp edges, fine detail) without a font.
struct Greek {
  static constexpr int32_t kCellWidth = 8;
  static constexpr int32_t kCellHeight = 16;
  static constexpr uint32_t kInk = xrgb(32, 33, 40);

  // Character `index` of the text `text_seed`: 0 for a space (about 1 in 6), else a glyph code.
  static uint32_t glyph(uint32_t text_seed, uint64_t index);
  // Draws a glyph code into the cell whose top-left corner is (x, y); a space draws nothing.
  static void paint_glyph(const Canvas& canvas, int32_t x, int32_t y, uint32_t glyph, uint32_t ink);
  // `length` characters of text `text_seed` from `first_index` on, left to right from (x, y).
  static void paint_run(const Canvas& canvas, int32_t x, int32_t y, uint32_t text_seed, uint64_t first_index,
                        int32_t length, uint32_t ink);
};

// Lines of ragged greeked paragraphs filling `area`, line `first_line` of text `seed` at the top.
void paint_paragraphs(const Canvas& canvas, const core::Rect& area, uint32_t seed, uint64_t first_line = 0);

struct Window {
  static constexpr int32_t kBorder = 1;
  static constexpr int32_t kTitleHeight = 24;

  core::Rect frame;       // outer rectangle: border, title bar and client
  uint32_t seed = 1;      // title and content text
  bool active = false;    // title bar colour
  bool with_text = true;  // paragraphs in the client area, else plain white

  core::Rect client() const;
  core::Rect title_bar() const;
};

void paint_window(const Canvas& canvas, const Window& window);

// The taskbar along the bottom edge of a width x height surface.
core::Rect taskbar_rect(int32_t width, int32_t height);

// Wallpaper, desktop icons, taskbar and `windows` painted back to front: the static part of
// every scene, computed once and then copied from.
Image paint_desktop(int32_t width, int32_t height, const std::vector<Window>& windows);

// A rectangle given in fractions of a width x height surface.
core::Rect fraction_rect(int32_t width, int32_t height, double x, double y, double w, double h);

// The `width` x `height` rectangle centred on `around` (which it may exceed).
core::Rect centered_rect(const core::Rect& around, int32_t width, int32_t height);

}  // namespace vdistream::capture::synth
