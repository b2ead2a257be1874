#include "capture/synthetic/scene.hpp"

#include "capture/synthetic/barcode.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture {

std::unique_ptr<Scene> Scene::create(Workload workload, const SceneParams& params) {
  switch (workload) {
    case Workload::Idle: return synth::make_idle_scene(params);
    case Workload::Typing: return synth::make_typing_scene(params);
    case Workload::Scrolling: return synth::make_scrolling_scene(params);
    case Workload::WindowDrag: return synth::make_window_drag_scene(params);
    case Workload::Video: return synth::make_video_scene(params);
    case Workload::FullMotion: return synth::make_fullmotion_scene(params);
  }
  return nullptr;
}

void Scene::draw(uint64_t sequence, const core::Rect& clip, uint8_t* pixels, uint32_t pitch) const {
  draw(sequence, core::DamageRegion(clip), pixels, pitch);
}

void Scene::draw(uint64_t sequence, const core::DamageRegion& region, uint8_t* pixels, uint32_t pitch) const {
  const core::Rect code_area = params_.barcode ? Barcode::area(width(), height()) : core::Rect{};
  synth::Image code;
  for (const core::Rect& rect : region.rects()) {
    core::Rect clip = rect.intersected(surface());
    if (clip.empty()) continue;
    synth::Canvas canvas(pixels, pitch, clip);
    paint(sequence, canvas);
    if (clip.intersected(code_area).empty()) continue;
    if (code.width() == 0) {  // drawn once per call, and only when some rect needs it
      code = synth::Image(code_area.width, code_area.height);
      Barcode::stamp_xrgb(code.bytes(), code.pitch(), code.width(), code.height(),
                          uint32_t(barcode_value(sequence)));
    }
    canvas.blit(code, code_area.x, code_area.y);
  }
}

core::DamageRegion Scene::damage(uint64_t sequence) const {
  if (sequence == 0) return core::DamageRegion::full(width(), height());
  core::DamageRegion damage = visible_scene_damage(sequence);
  if (params_.barcode && !damage.empty()) damage.add(Barcode::area(width(), height()));
  return damage;
}

core::DamageRegion Scene::visible_scene_damage(uint64_t sequence) const {
  core::DamageRegion damage = scene_damage(sequence);
  damage.clip(width(), height());
  return damage;
}

uint64_t Scene::last_changed_frame(uint64_t sequence) const {
  while (sequence > 0 && visible_scene_damage(sequence).empty()) --sequence;
  return sequence;
}

}  // namespace vdistream::capture

namespace vdistream::capture::synth {

core::Rect visible_or_surface(const core::Rect& area, int32_t width, int32_t height) {
  core::Rect visible = area.intersected({0, 0, width, height});
  return visible.empty() ? core::Rect{0, 0, width, height} : visible;
}

}  // namespace vdistream::capture::synth
