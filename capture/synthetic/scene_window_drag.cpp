// window-drag: a window of 40 % x 40 % of the screen dragged along a smooth Lissajous path
// over the wallpaper and two static windows. Both the desktop and the dragged window are
// rendered once; a frame is two clipped copies.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

constexpr double kPeriodX = 6.0;  // seconds; the two periods do not divide each other, so the
constexpr double kPeriodY = 4.4;  // path covers the screen instead of tracing one line

Image render_window(int32_t width, int32_t height) {
  Image image(width, height);
  paint_window(image.canvas(), Window{{0, 0, width, height}, 41, true, true});
  return image;
}

class WindowDragScene final : public Scene {
 public:
  explicit WindowDragScene(const SceneParams& params)
      : Scene(params),
        window_(render_window(std::max(1, int32_t(std::lround(params.width * 0.4))),
                              std::max(1, int32_t(std::lround(params.height * 0.4))))),
        travel_x_(std::max(0, params.width - window_.width())),
        travel_y_(std::max(0, taskbar_rect(params.width, params.height).y - window_.height())),
        desktop_(paint_desktop(params.width, params.height,
                               {Window{fraction_rect(params.width, params.height, 0.06, 0.08, 0.50, 0.55), 42, false},
                                Window{fraction_rect(params.width, params.height, 0.46, 0.36, 0.48, 0.50), 43, false}})) {}

 protected:
  void paint(uint64_t sequence, const Canvas& canvas) const override {
    canvas.blit(desktop_, 0, 0);
    core::Rect at = window_at(sequence);
    canvas.blit(window_, at.x, at.y);
  }

  core::DamageRegion scene_damage(uint64_t sequence) const override {
    core::Rect before = window_at(sequence - 1), now = window_at(sequence);
    if (before == now) return {};
    core::DamageRegion damage(before);
    damage.add(now);
    return damage;
  }

 private:
  core::Rect window_at(uint64_t sequence) const {
    constexpr double kTau = 2 * std::numbers::pi;
    double t = seconds(sequence);
    double fx = 0.5 + 0.5 * std::sin(kTau * t / kPeriodX);
    double fy = 0.5 + 0.5 * std::sin(kTau * t / kPeriodY + 0.7);
    return {int32_t(std::lround(fx * travel_x_)), int32_t(std::lround(fy * travel_y_)), window_.width(),
            window_.height()};
  }

  Image window_;
  int32_t travel_x_, travel_y_;
  Image desktop_;
};

}  // namespace

std::unique_ptr<Scene> make_window_drag_scene(const SceneParams& params) {
  return std::make_unique<WindowDragScene>(params);
}

}  // namespace vdistream::capture::synth
