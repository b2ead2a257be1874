// typing: a text editor where characters appear at 15 per second and the caret blinks at 2 Hz.
// When the page is full it clears and typing starts over at the top.
#include <algorithm>
#include <cmath>

#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

constexpr double kCharsPerSecond = 15.0;
constexpr double kCaretTogglesPerSecond = 4.0;  // on and off twice a second
constexpr uint32_t kTextSeed = 0x7e47u;

// The cells text is typed into: whole 8x16 cells that lie on the surface, at least one.
struct TextGrid {
  int32_t x = 0, y = 0, columns = 1, rows = 1;

  TextGrid(const core::Rect& area, int32_t surface_width, int32_t surface_height) {
    x = std::clamp(area.x, 0, surface_width - Greek::kCellWidth);
    y = std::clamp(area.y, 0, surface_height - Greek::kCellHeight);
    columns = std::max(1, (std::min(area.right(), surface_width) - x) / Greek::kCellWidth);
    rows = std::max(1, (std::min(area.bottom(), surface_height) - y) / Greek::kCellHeight);
  }
  uint64_t capacity() const { return uint64_t(columns) * uint64_t(rows); }
  core::Rect bounds() const { return {x, y, columns * Greek::kCellWidth, rows * Greek::kCellHeight}; }
  core::Rect cell(uint64_t position) const {
    return {x + int32_t(position % uint64_t(columns)) * Greek::kCellWidth,
            y + int32_t(position / uint64_t(columns)) * Greek::kCellHeight, Greek::kCellWidth, Greek::kCellHeight};
  }
  // Cells [first, end) of the page, as one rectangle per row.
  void add_cells(uint64_t first, uint64_t end, core::DamageRegion& out) const {
    while (first < end) {
      uint64_t row_end = std::min(end, (first / uint64_t(columns) + 1) * uint64_t(columns));
      core::Rect start = cell(first);
      out.add({start.x, start.y, int32_t(row_end - first) * Greek::kCellWidth, Greek::kCellHeight});
      first = row_end;
    }
  }
};

// What the editor shows at one frame.
struct EditorState {
  uint64_t page = 0;    // pages filled so far
  uint64_t typed = 0;   // characters on the current page
  bool caret_on = false;
};

class TypingScene final : public Scene {
 public:
  explicit TypingScene(const SceneParams& params)
      : Scene(params),
        editor_{fraction_rect(params.width, params.height, 0.06, 0.06, 0.60, 0.80), 21, true, false},
        grid_(inset(editor_.client()), params.width, params.height),
        desktop_(paint_desktop(params.width, params.height,
                               {Window{fraction_rect(params.width, params.height, 0.52, 0.18, 0.44, 0.60), 22, false},
                                editor_})) {}

 protected:
  void paint(uint64_t sequence, const Canvas& canvas) const override {
    canvas.blit(desktop_, 0, 0);
    EditorState state = state_at(sequence);
    paint_text(state, canvas);
    if (state.caret_on) {
      core::Rect caret = grid_.cell(state.typed);
      canvas.fill({caret.x, caret.y + 1, 2, Greek::kCellHeight - 2}, Greek::kInk);
    }
  }

  core::DamageRegion scene_damage(uint64_t sequence) const override {
    EditorState before = state_at(sequence - 1), now = state_at(sequence);
    core::DamageRegion damage;
    if (before.page != now.page) return core::DamageRegion(grid_.bounds());  // the page cleared
    grid_.add_cells(before.typed, now.typed, damage);
    if (before.typed != now.typed || before.caret_on != now.caret_on) {
      if (before.caret_on) damage.add(grid_.cell(before.typed));
      if (now.caret_on) damage.add(grid_.cell(now.typed));
    }
    return damage;
  }

 private:
  static core::Rect inset(const core::Rect& client) {
    return {client.x + 6, client.y + 4, client.width - 12, client.height - 8};
  }

  EditorState state_at(uint64_t sequence) const {
    auto typed_total = uint64_t(std::floor(seconds(sequence) * kCharsPerSecond));
    auto toggles = uint64_t(std::floor(seconds(sequence) * kCaretTogglesPerSecond));
    return {typed_total / grid_.capacity(), typed_total % grid_.capacity(), toggles % 2 == 0};
  }

  // Only the cells that meet the clip: a frame usually redraws one or two of them.
  void paint_text(const EditorState& state, const Canvas& canvas) const {
    core::Rect area = canvas.clip().intersected(grid_.bounds());
    if (area.empty() || state.typed == 0) return;
    int32_t first_row = (area.y - grid_.y) / Greek::kCellHeight;
    int32_t last_row = (area.bottom() - 1 - grid_.y) / Greek::kCellHeight;
    int32_t first_column = (area.x - grid_.x) / Greek::kCellWidth;
    int32_t last_column = (area.right() - 1 - grid_.x) / Greek::kCellWidth;
    uint64_t page_start = state.page * grid_.capacity();
    for (int32_t row = first_row; row <= last_row; ++row) {
      for (int32_t column = first_column; column <= last_column; ++column) {
        uint64_t position = uint64_t(row) * uint64_t(grid_.columns) + uint64_t(column);
        if (position >= state.typed) return;
        core::Rect cell = grid_.cell(position);
        Greek::paint_glyph(canvas, cell.x, cell.y, Greek::glyph(kTextSeed, page_start + position), Greek::kInk);
      }
    }
  }

  Window editor_;
  TextGrid grid_;
  Image desktop_;
};

}  // namespace

std::unique_ptr<Scene> make_typing_scene(const SceneParams& params) { return std::make_unique<TypingScene>(params); }

}  // namespace vdistream::capture::synth
