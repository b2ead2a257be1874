// idle: a static desktop with a couple of windows. Nothing changes after frame 0.
#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

class IdleScene final : public Scene {
 public:
  explicit IdleScene(const SceneParams& params)
      : Scene(params),
        desktop_(paint_desktop(params.width, params.height,
                               {Window{fraction_rect(params.width, params.height, 0.08, 0.10, 0.46, 0.52), 11, false},
                                Window{fraction_rect(params.width, params.height, 0.40, 0.28, 0.50, 0.56), 12, true}})) {}

 protected:
  void paint(uint64_t, const Canvas& canvas) const override { canvas.blit(desktop_, 0, 0); }
  core::DamageRegion scene_damage(uint64_t) const override { return {}; }
  uint64_t last_changed_frame(uint64_t) const override { return 0; }

 private:
  Image desktop_;
};

}  // namespace

std::unique_ptr<Scene> make_idle_scene(const SceneParams& params) { return std::make_unique<IdleScene>(params); }

}  // namespace vdistream::capture::synth
