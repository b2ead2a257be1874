// fullmotion: the whole surface changes every frame, a pan over a large photographic-ish
// texture (several octaves of coloured value noise). The texture is computed once; a frame is
// row copies only, because this workload runs beside a 1080p software encoder.
#include <algorithm>
#include <array>

#include "capture/synthetic/desktop.hpp"
#include "capture/synthetic/workloads.hpp"

namespace vdistream::capture::synth {

namespace {

constexpr int32_t kLargestCell = 256;
constexpr int64_t kPanX = 6, kPanY = 3;  // pixels per frame

int32_t round_up(int32_t v, int32_t multiple) { return (v + multiple - 1) / multiple * multiple; }

// Tileable (its size is a multiple of every lattice cell), and larger than the surface so a
// frame never shows the same texel twice.
Image render_texture(int32_t surface_width, int32_t surface_height) {
  const int32_t w = round_up(surface_width, kLargestCell) + kLargestCell;
  const int32_t h = round_up(surface_height, kLargestCell) + kLargestCell;
  constexpr std::array<int32_t, 7> kCells{256, 128, 64, 32, 16, 8, 4};
  std::vector<ValueNoise> octaves;
  for (size_t i = 0; i < kCells.size(); ++i) octaves.emplace_back(0xf011u + uint32_t(i), kCells[i], w, h);
  ValueNoise warm(0xc0107u, 256, w, h), cool(0xc0108u, 128, w, h);

  Image texture(w, h);
  std::vector<float> light(static_cast<size_t>(w)), red_green(light), blue_yellow(light);
  for (int32_t y = 0; y < h; ++y) {
    std::fill(light.begin(), light.end(), 0.0f);
    std::fill(red_green.begin(), red_green.end(), 0.0f);
    std::fill(blue_yellow.begin(), blue_yellow.end(), 0.0f);
    float weight = 1.0f, total = 0.0f;  // fine octaves nearly as strong as coarse: a busy, photo-like picture
    for (const ValueNoise& octave : octaves) {
      octave.accumulate_row(y, weight, light.data(), w);
      total += weight;
      weight *= 0.7f;
    }
    warm.accumulate_row(y, 1.0f, red_green.data(), w);
    cool.accumulate_row(y, 1.0f, blue_yellow.data(), w);
    uint32_t* row = texture.row(y);
    for (int32_t x = 0; x < w; ++x) {
      float l = 128.0f + (light[size_t(x)] / total - 0.5f) * 560.0f;  // stretch the sum's narrow range
      float a = (red_green[size_t(x)] - 0.5f) * 150.0f, b = (blue_yellow[size_t(x)] - 0.5f) * 150.0f;
      row[x] = xrgb(uint32_t(std::clamp(l + a, 0.0f, 255.0f)), uint32_t(std::clamp(l - 0.5f * a + 0.2f * b, 0.0f, 255.0f)),
                    uint32_t(std::clamp(l - b, 0.0f, 255.0f)));
    }
  }
  return texture;
}

class FullMotionScene final : public Scene {
 public:
  explicit FullMotionScene(const SceneParams& params)
      : Scene(params), texture_(render_texture(params.width, params.height)) {}

 protected:
  void paint(uint64_t sequence, const Canvas& canvas) const override {
    canvas.blit_tiled(texture_, int64_t(sequence) * kPanX, int64_t(sequence) * kPanY, surface());
  }

  core::DamageRegion scene_damage(uint64_t) const override { return core::DamageRegion(surface()); }

 private:
  Image texture_;
};

}  // namespace

std::unique_ptr<Scene> make_fullmotion_scene(const SceneParams& params) {
  return std::make_unique<FullMotionScene>(params);
}

}  // namespace vdistream::capture::synth
