// One scene per workload, each in its own file.
#pragma once

#include <memory>

#include "capture/synthetic/scene.hpp"

namespace vdistream::capture::synth {

std::unique_ptr<Scene> make_idle_scene(const SceneParams& params);
std::unique_ptr<Scene> make_typing_scene(const SceneParams& params);
std::unique_ptr<Scene> make_scrolling_scene(const SceneParams& params);
std::unique_ptr<Scene> make_window_drag_scene(const SceneParams& params);
std::unique_ptr<Scene> make_video_scene(const SceneParams& params);
std::unique_ptr<Scene> make_fullmotion_scene(const SceneParams& params);

// The part of `area` on a width x height surface, or the whole surface when nothing of it is
// visible: a moving workload must always change something, even on a tiny surface.
core::Rect visible_or_surface(const core::Rect& area, int32_t width, int32_t height);

}  // namespace vdistream::capture::synth
