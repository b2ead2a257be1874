// video: a media player window whose 640x360 picture changes every frame: a panning
// textured pattern with a coloured disc moving over it. The rest of the desktop stays still.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

constexpr int32_t kVideoWidth = 640;
constexpr int32_t kVideoHeight = 360;
constexpr int32_t kTextureSize = 512;
constexpr int32_t kDiscRadius = 40;

// Colourful blobs crossed by soft diagonal stripes; tileable, so the pan never shows a seam.
Image render_pattern() {
  Image pattern(kTextureSize, kTextureSize);
  ValueNoise hue_a(0x71d0u, 128, kTextureSize, kTextureSize), hue_b(0x71d1u, 64, kTextureSize, kTextureSize);
  ValueNoise detail(0x71d2u, 8, kTextureSize, kTextureSize);
  std::vector<float> a(kTextureSize), b(kTextureSize), d(kTextureSize);
  for (int32_t y = 0; y < kTextureSize; ++y) {
    std::fill(a.begin(), a.end(), 0.0f);
    std::fill(b.begin(), b.end(), 0.0f);
    std::fill(d.begin(), d.end(), 0.0f);
    hue_a.accumulate_row(y, 1.0f, a.data(), kTextureSize);
    hue_b.accumulate_row(y, 1.0f, b.data(), kTextureSize);
    detail.accumulate_row(y, 1.0f, d.data(), kTextureSize);
    uint32_t* row = pattern.row(y);
    for (int32_t x = 0; x < kTextureSize; ++x) {
      float stripe = 0.5f + 0.5f * std::sin(float(x + y) * float(2 * std::numbers::pi) * 8 / kTextureSize);
      float light = 0.55f + 0.3f * stripe + 0.25f * (d[size_t(x)] - 0.5f);
      row[x] = xrgb(uint32_t(std::clamp(255 * light * a[size_t(x)], 0.0f, 255.0f)),
                    uint32_t(std::clamp(255 * light * (1 - a[size_t(x)]) * 0.9f, 0.0f, 255.0f)),
                    uint32_t(std::clamp(255 * light * b[size_t(x)], 0.0f, 255.0f)));
    }
  }
  return pattern;
}

class VideoScene final : public Scene {
 public:
  explicit VideoScene(const SceneParams& params)
      : Scene(params),
        video_(centered_rect({0, 0, params.width, params.height}, kVideoWidth, kVideoHeight)),
        visible_video_(video_.intersected(surface())),
        pattern_(render_pattern()),
        desktop_(paint_desktop(params.width, params.height,
                               {Window{fraction_rect(params.width, params.height, 0.08, 0.08, 0.46, 0.50), 51, false},
                                player_window()})) {}

 protected:
  void paint(uint64_t sequence, const Canvas& canvas) const override {
    canvas.blit(desktop_, 0, 0);
    Canvas picture = canvas.clipped_to(visible_video_);
    if (picture.clip().empty()) return;
    picture.blit_tiled(pattern_, int64_t(sequence) * 4, int64_t(sequence) * 2, video_);
    paint_disc(sequence, picture);
  }

  core::DamageRegion scene_damage(uint64_t) const override { return core::DamageRegion(visible_video_); }

 private:
  Window player_window() const {
    int32_t chrome = Window::kBorder + Window::kTitleHeight;
    return Window{{video_.x - Window::kBorder, video_.y - chrome, video_.width + 2 * Window::kBorder,
                   video_.height + chrome + Window::kBorder},
                  52, true, false};
  }

  // Per-pixel work, but only over the disc's bounding box.
  void paint_disc(uint64_t sequence, const Canvas& canvas) const {
    const core::Rect& v = visible_video_;
    double phase = double(sequence);
    int32_t cx = v.x + v.width / 2 + int32_t(std::lround(std::sin(phase / 17.0) * std::max(0, v.width / 2 - 60)));
    int32_t cy = v.y + v.height / 2 + int32_t(std::lround(std::sin(phase / 11.0) * std::max(0, v.height / 2 - 50)));
    uint32_t color = xrgb(uint32_t(128 + 120 * std::sin(phase / 23.0)), uint32_t(128 + 120 * std::sin(phase / 29.0 + 2)),
                          uint32_t(128 + 120 * std::sin(phase / 31.0 + 4)));
    core::Rect box = core::Rect{cx - kDiscRadius, cy - kDiscRadius, 2 * kDiscRadius + 1, 2 * kDiscRadius + 1}.intersected(
        canvas.clip());
    for (int32_t y = box.y; y < box.bottom(); ++y) {
      uint32_t* row = canvas.row(y);
      int32_t dy = y - cy;
      for (int32_t x = box.x; x < box.right(); ++x) {
        int32_t dx = x - cx;
        if (dx * dx + dy * dy <= kDiscRadius * kDiscRadius) row[x] = color;
      }
    }
  }

  core::Rect video_, visible_video_;
  Image pattern_;
  Image desktop_;
};

}  // namespace

std::unique_ptr<Scene> make_video_scene(const SceneParams& params) { return std::make_unique<VideoScene>(params); }

}  // namespace vdistream::capture::synth
