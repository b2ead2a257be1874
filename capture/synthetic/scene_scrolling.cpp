// scrolling: a document viewer whose text scrolls up at 120 px/s, with a scrollbar that
// follows. The document is rendered once and panned with row copies.
#include <algorithm>
#include <cmath>

#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

constexpr double kPixelsPerSecond = 120.0;
constexpr int32_t kDocumentLines = 128;  // then it starts over, seamlessly at a line boundary
constexpr int32_t kDocumentHeight = kDocumentLines * Greek::kCellHeight;
constexpr int32_t kScrollbarWidth = 12;

Image render_document(int32_t width) {
  Image document(width, kDocumentHeight, xrgb(255, 255, 255));
  paint_paragraphs(document.canvas(), {6, 0, width - 12, kDocumentHeight}, 0x5c2011u);
  return document;
}

class ScrollingScene final : public Scene {
 public:
  explicit ScrollingScene(const SceneParams& params)
      : Scene(params),
        viewer_{fraction_rect(params.width, params.height, 0.10, 0.07, 0.60, 0.80), 31, true, false},
        client_(visible_or_surface(viewer_.client(), params.width, params.height)),
        text_area_{client_.x, client_.y, std::max(1, client_.width - kScrollbarWidth), client_.height},
        scrollbar_{text_area_.right(), client_.y, client_.right() - text_area_.right(), client_.height},
        document_(render_document(text_area_.width)),
        desktop_(paint_desktop(params.width, params.height,
                               {Window{fraction_rect(params.width, params.height, 0.50, 0.30, 0.46, 0.50), 32, false},
                                viewer_})) {}

 protected:
  void paint(uint64_t sequence, const Canvas& canvas) const override {
    canvas.blit(desktop_, 0, 0);
    int64_t offset = offset_at(sequence);
    canvas.blit_tiled(document_, 0, offset, text_area_);
    paint_scrollbar(offset % kDocumentHeight, canvas);
  }

  core::DamageRegion scene_damage(uint64_t sequence) const override {
    if (offset_at(sequence) == offset_at(sequence - 1)) return {};
    return core::DamageRegion(client_);
  }

 private:
  int64_t offset_at(uint64_t sequence) const { return int64_t(std::floor(seconds(sequence) * kPixelsPerSecond)); }

  void paint_scrollbar(int64_t document_offset, const Canvas& canvas) const {
    canvas.fill(scrollbar_, xrgb(232, 234, 238));
    int32_t track = scrollbar_.height;
    int32_t thumb = std::max(8, int32_t(int64_t(track) * text_area_.height / kDocumentHeight));
    int32_t top = int32_t(document_offset * std::max(0, track - thumb) / kDocumentHeight);
    canvas.fill({scrollbar_.x + 2, scrollbar_.y + top, scrollbar_.width - 4, thumb}, xrgb(150, 154, 164));
  }

  Window viewer_;
  core::Rect client_, text_area_, scrollbar_;
  Image document_;
  Image desktop_;
};

}  // namespace

std::unique_ptr<Scene> make_scrolling_scene(const SceneParams& params) {
  return std::make_unique<ScrollingScene>(params);
}

}  // namespace vdistream::capture::synth
