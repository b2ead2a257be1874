// A workload drawn as a pure function of the frame number, with exact damage: frame N looks the
// same however it is reached, so a buffer can be brought up to date by redrawing only what
// changed since it last held a frame.
#pragma once

#include <cstdint>
#include <memory>

#include "capture/synthetic/canvas.hpp"
#include "capture/synthetic/synthetic_source.hpp"
#include "core/damage.hpp"

namespace vdistream::capture {

struct SceneParams {
  int32_t width = 0;
  int32_t height = 0;
  double fps = 30.0;     // frame N shows time N / fps
  bool barcode = false;  // stamp the frame number (see Scene::draw)
};

class Scene {
 public:
  static std::unique_ptr<Scene> create(Workload workload, const SceneParams& params);
  virtual ~Scene() = default;

  int32_t width() const { return params_.width; }
  int32_t height() const { return params_.height; }
  core::Rect surface() const { return {0, 0, params_.width, params_.height}; }

  // Paints frame `sequence` (XRGB8888; `pixels` is the surface's top-left corner) only inside
  // the clip / the region. With the barcode on, it shows the number of the latest frame up to
  // `sequence` that changed anything, so frames without changes stay identical.
  void draw(uint64_t sequence, const core::Rect& clip, uint8_t* pixels, uint32_t pitch) const;
  void draw(uint64_t sequence, const core::DamageRegion& region, uint8_t* pixels, uint32_t pitch) const;

  // Exactly what differs between frame sequence - 1 and frame sequence (the whole surface for
  // frame 0), barcode included.
  core::DamageRegion damage(uint64_t sequence) const;

  // The number the barcode of frame `sequence` shows.
  uint64_t barcode_value(uint64_t sequence) const { return last_changed_frame(sequence); }

 protected:
  explicit Scene(const SceneParams& params) : params_(params) {}

  double seconds(uint64_t sequence) const { return double(sequence) / params_.fps; }

  // The workload itself, without the barcode: its picture inside canvas.clip(), and what
  // changed from frame sequence - 1 (called for sequence >= 1; clipped to the surface later).
  virtual void paint(uint64_t sequence, const synth::Canvas& canvas) const = 0;
  virtual core::DamageRegion scene_damage(uint64_t sequence) const = 0;

  // The latest frame <= sequence whose scene damage was not empty (0 when none). Walks back,
  // which is cheap because every moving workload changes at least every fraction of a second;
  // a static one overrides this.
  virtual uint64_t last_changed_frame(uint64_t sequence) const;

 private:
  core::DamageRegion visible_scene_damage(uint64_t sequence) const;

  SceneParams params_;
};

}  // namespace vdistream::capture
