#include "capture/synthetic/desktop.hpp"

#include <algorithm>
#include <cmath>

namespace vdistream::capture::synth {

namespace {

constexpr uint32_t kBorderColor = xrgb(72, 74, 82);
constexpr uint32_t kActiveTitle = xrgb(52, 100, 164);
constexpr uint32_t kInactiveTitle = xrgb(128, 134, 146);
constexpr uint32_t kTitleInk = xrgb(240, 242, 246);
constexpr uint32_t kClientColor = xrgb(255, 255, 255);
constexpr uint32_t kTaskbarColor = xrgb(28, 30, 36);

uint8_t clamp_byte(float v) { return uint8_t(std::clamp(v, 0.0f, 255.0f)); }

int32_t round_up(int32_t v, int32_t multiple) { return (v + multiple - 1) / multiple * multiple; }

}  // namespace

uint32_t Greek::glyph(uint32_t text_seed, uint64_t index) {
  uint32_t h = hash32(text_seed, uint32_t(index), uint32_t(index >> 32));
  return h % 6 == 0 ? 0 : (h | 1);
}

void Greek::paint_glyph(const Canvas& canvas, int32_t x, int32_t y, uint32_t glyph, uint32_t ink) {
  if (glyph == 0 || canvas.clip().intersected({x, y, kCellWidth, kCellHeight}).empty()) return;
  // Baseline at row 12, x-height from row 6, ascenders from row 2, descenders to row 15.
  auto stem = [&](int32_t column, int32_t top, int32_t bottom) { canvas.fill({x + column, y + top, 1, bottom - top + 1}, ink); };
  auto bar = [&](int32_t row) { canvas.fill({x + 1, y + row, 5, 1}, ink); };
  uint32_t bits = glyph >> 3;
  if ((bits & 0xf) == 0) {  // narrow letters: i, l, j
    stem(3, (bits & 0x10) ? 2 : 6, (bits & 0x20) ? 15 : 12);
    return;
  }
  bool left = bits & 0x1, right = bits & 0x4;
  if (left) stem(1, (bits & 0x2) ? 2 : 6, 12);
  if (right) stem(5, 6, (bits & 0x8) ? 15 : 12);
  bool top = bits & 0x10, middle = bits & 0x20, bottom = bits & 0x40;
  if (!left && !right && !top && !middle && !bottom) top = bottom = true;
  if (!left && !right) middle = true;  // z-like shapes need a diagonal stand-in
  if (top) bar(6);
  if (middle) bar(9);
  if (bottom) bar(12);
}

void Greek::paint_run(const Canvas& canvas, int32_t x, int32_t y, uint32_t text_seed, uint64_t first_index,
                      int32_t length, uint32_t ink) {
  for (int32_t i = 0; i < length; ++i)
    paint_glyph(canvas, x + i * kCellWidth, y, glyph(text_seed, first_index + uint64_t(i)), ink);
}

void paint_paragraphs(const Canvas& canvas, const core::Rect& area, uint32_t seed, uint64_t first_line) {
  const int32_t columns = area.width / Greek::kCellWidth;
  const int32_t rows = area.height / Greek::kCellHeight;
  Canvas inside = canvas.clipped_to(area);
  for (int32_t row = 0; row < rows; ++row) {
    uint64_t line = first_line + uint64_t(row);
    uint32_t h = hash32(seed ^ 0x5a5a5a5au, uint32_t(line));
    if (h % 7 == 0) continue;  // blank line between paragraphs
    int32_t length = columns - int32_t((h >> 8) % uint32_t(std::max(1, columns / 2)));
    Greek::paint_run(inside, area.x, area.y + row * Greek::kCellHeight, seed, line * 4096, length, Greek::kInk);
  }
}

core::Rect Window::client() const {
  return {frame.x + kBorder, frame.y + kBorder + kTitleHeight, frame.width - 2 * kBorder,
          frame.height - 2 * kBorder - kTitleHeight};
}

core::Rect Window::title_bar() const { return {frame.x + kBorder, frame.y + kBorder, frame.width - 2 * kBorder, kTitleHeight}; }

void paint_window(const Canvas& canvas, const Window& window) {
  canvas.fill(window.frame, kBorderColor);
  core::Rect title = window.title_bar();
  canvas.fill(title, window.active ? kActiveTitle : kInactiveTitle);
  int32_t title_chars = 8 + int32_t(hash32(window.seed) % 16);
  Canvas title_canvas = canvas.clipped_to(title);
  Greek::paint_run(title_canvas, title.x + 8, title.y + 4, window.seed ^ 0x77u, 0, title_chars, kTitleInk);
  for (int32_t i = 0; i < 3; ++i) {  // minimise, maximise, close
    uint32_t color = (i == 2 && window.active) ? xrgb(204, 72, 60) : xrgb(200, 204, 212);
    title_canvas.fill({title.right() - 22 * (3 - i), title.y + 5, 14, 14}, color);
  }
  core::Rect client = window.client();
  canvas.fill(client, kClientColor);
  if (window.with_text)
    paint_paragraphs(canvas, {client.x + 6, client.y + 4, client.width - 12, client.height - 8}, window.seed);
}

core::Rect taskbar_rect(int32_t width, int32_t height) {
  int32_t bar = std::clamp(height / 27, 4, 40);
  return {0, height - bar, width, bar};
}

namespace {

void paint_wallpaper(Image& image) {
  const int32_t w = image.width(), h = image.height();
  // Two octaves of large, soft noise over a diagonal gradient: smooth like a photo wallpaper,
  // not flat, so it costs an encoder what real wallpapers cost.
  ValueNoise coarse(0xdecafu, 128, round_up(w, 128), round_up(h, 128));
  ValueNoise fine(0xbeefu, 16, round_up(w, 16), round_up(h, 16));
  std::vector<float> texture(static_cast<size_t>(w));
  for (int32_t y = 0; y < h; ++y) {
    std::fill(texture.begin(), texture.end(), 0.0f);
    coarse.accumulate_row(y, 26.0f, texture.data(), w);
    fine.accumulate_row(y, 6.0f, texture.data(), w);
    uint32_t* row = image.row(y);
    for (int32_t x = 0; x < w; ++x) {
      float t = (float(x) / float(std::max(1, w)) + float(y) / float(std::max(1, h))) * 0.5f;
      float n = texture[size_t(x)] - 16.0f;
      row[x] = xrgb(clamp_byte(22 + 20 * t + n * 0.6f), clamp_byte(50 + 70 * t + n), clamp_byte(100 + 30 * t + n));
    }
  }
}

void paint_icons(const Canvas& canvas, int32_t height) {
  for (int32_t i = 0; i < 4; ++i) {
    int32_t y = 40 + i * 84;
    if (y + 70 > taskbar_rect(0, height).y) break;
    uint32_t h = hash32(0x1c0u, uint32_t(i));
    canvas.fill({20, y, 48, 48}, xrgb(80 + h % 150, 80 + (h >> 8) % 150, 80 + (h >> 16) % 150));
    canvas.fill({28, y + 10, 32, 4}, xrgb(250, 250, 250));
    Greek::paint_run(canvas, 16, y + 52, h, 0, 7, xrgb(236, 238, 242));
  }
}

void paint_taskbar(const Canvas& canvas, int32_t width, int32_t height) {
  core::Rect bar = taskbar_rect(width, height);
  canvas.fill(bar, kTaskbarColor);
  canvas.fill({bar.x, bar.y, bar.width, 1}, xrgb(72, 76, 88));
  int32_t inset = std::max(1, bar.height / 6);
  int32_t button = bar.height - 2 * inset;
  canvas.fill({inset * 2, bar.y + inset, button, button}, kActiveTitle);
  int32_t task_width = std::min(180, width / 8);
  for (int32_t i = 0; i < 3; ++i) {
    core::Rect task{inset * 4 + button + i * (task_width + inset), bar.y + inset, task_width, button};
    canvas.fill(task, i == 0 ? xrgb(66, 72, 86) : xrgb(46, 50, 60));
    Greek::paint_run(canvas.clipped_to(task), task.x + 6, task.y + (button - 16) / 2, 0x7a5u + uint32_t(i), 0,
                     (task_width - 12) / Greek::kCellWidth, xrgb(220, 222, 228));
  }
  Greek::paint_run(canvas.clipped_to(bar), width - 60, bar.y + (bar.height - 16) / 2, 0xc10cu, 0, 5,
                   xrgb(220, 222, 228));
}

}  // namespace

Image paint_desktop(int32_t width, int32_t height, const std::vector<Window>& windows) {
  Image image(width, height);
  paint_wallpaper(image);
  Canvas canvas = image.canvas();
  paint_icons(canvas, height);
  for (const Window& window : windows) paint_window(canvas, window);
  paint_taskbar(canvas, width, height);
  return image;
}

core::Rect fraction_rect(int32_t width, int32_t height, double x, double y, double w, double h) {
  return {int32_t(std::lround(width * x)), int32_t(std::lround(height * y)), int32_t(std::lround(width * w)),
          int32_t(std::lround(height * h))};
}

core::Rect centered_rect(const core::Rect& around, int32_t width, int32_t height) {
  return {around.x + (around.width - width) / 2, around.y + (around.height - height) / 2, width, height};
}

}  // namespace vdistream::capture::synth
