#include <catch2/catch.hpp>

#include <dlfcn.h>

#include <drm_fourcc.h>

#include "encode/nvenc/cuda_runtime.hpp"
#include "encode/nvenc/egl_cuda_importer.hpp"
#include "encode/nvenc/nvenc_encoder.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

using namespace vdistream;

TEST_CASE("h264_nvenc is opened with zero delay, ultra-low-latency tuning, P1 and a one-frame CBR buffer", "[encode][nvenc]") {
  encode::EncoderConfig c;
  c.bitrate_bps = 10'000'000;
  c.fps = 50;
  auto s = encode::nvenc_settings(c);
  CHECK(s.codec == "h264_nvenc");
  CHECK(s.max_b_frames == 0);
  CHECK(s.rc_buffer_size == 200'000);
  CHECK(s.rc_max_rate == 10'000'000);
  auto dict = encode::options_dictionary(s);
  auto value = [&](const char* key) {
    AVDictionaryEntry* e = av_dict_get(dict.get(), key, nullptr, 0);
    return std::string(e ? e->value : "<absent>");
  };
  CHECK(value("delay") == "0");
  CHECK(value("zerolatency") == "1");
  CHECK(value("tune") == "ull");
  CHECK(value("preset") == "p1");
  CHECK(value("rc") == "cbr");
  CHECK(value("forced-idr") == "1");
  CHECK(value("rc-lookahead") == "0");
  CHECK(value("profile") == "baseline");
  CHECK(value("intra-refresh") == "<absent>");

  c.codec = core::Codec::H265;
  c.intra_refresh = true;
  auto hevc = encode::nvenc_settings(c);
  CHECK(hevc.codec == "hevc_nvenc");
  REQUIRE(hevc.option("profile") != nullptr);
  CHECK(*hevc.option("profile") == "main");
  REQUIRE(hevc.option("intra-refresh") != nullptr);
}

TEST_CASE("the NVENC options are ones this FFmpeg's h264_nvenc knows", "[encode][nvenc]") {
  const AVCodec* codec = avcodec_find_encoder_by_name("h264_nvenc");
  if (!codec) {
    SUCCEED("this FFmpeg has no h264_nvenc");
    return;
  }
  REQUIRE(codec->priv_class != nullptr);
  const AVClass* cls = codec->priv_class;  // av_opt_find takes a pointer to an AVClass pointer
  for (const auto& [key, value] : encode::nvenc_settings(encode::EncoderConfig{}).options) {
    INFO(key);
    CHECK(av_opt_find(&cls, key.c_str(), nullptr, 0, AV_OPT_SEARCH_FAKE_OBJ) != nullptr);
  }
}

TEST_CASE("the NVENC API version check compares major and minor", "[encode][nvenc]") {
  CHECK(encode::nvenc_api_name((12u << 4) | 1u) == "NVENC API 12.1");
  CHECK(encode::nvenc_api_sufficient((12u << 4) | 0u, (11u << 4) | 1u));
  CHECK(encode::nvenc_api_sufficient((11u << 4) | 1u, (11u << 4) | 1u));
  CHECK_FALSE(encode::nvenc_api_sufficient((11u << 4) | 0u, (11u << 4) | 1u));
}

TEST_CASE("without the NVIDIA driver the NVENC backend refuses to open, naming the missing library", "[encode][nvenc]") {
  void* cuda = dlopen("libcuda.so.1", RTLD_LAZY);
  if (cuda) {
    dlclose(cuda);
    SUCCEED("libcuda.so.1 is installed here: the outcome depends on the GPU");
    return;
  }
  auto e = encode::NvencEncoder::create(encode::EncoderConfig{}, encode::HardwareOptions{});
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.error(), Catch::StartsWith("libcuda.so.1 not found"));
}

TEST_CASE("the EGL dma-buf import attributes carry every plane and the modifier's two halves", "[encode][nvenc]") {
  encode::DmaBufLayout layout;
  layout.drm_fourcc = DRM_FORMAT_XRGB8888;
  layout.width = 1920;
  layout.height = 1080;
  layout.object_count = 1;
  layout.objects[0] = {42, 8'294'400, I915_FORMAT_MOD_Y_TILED_CCS};
  layout.plane_count = 1;
  layout.planes[0] = {0, 0, 7680};
  auto a = encode::egl_dmabuf_attributes(layout);
  REQUIRE(a.size() == 6 + 10 + 1);
  CHECK(a.back() == EGL_NONE);
  auto value = [&](EGLint key) {
    for (size_t i = 0; i + 1 < a.size(); i += 2)
      if (a[i] == key) return a[i + 1];
    return EGLint(-1);
  };
  CHECK(value(EGL_WIDTH) == 1920);
  CHECK(value(EGL_HEIGHT) == 1080);
  CHECK(uint32_t(value(EGL_LINUX_DRM_FOURCC_EXT)) == DRM_FORMAT_XRGB8888);
  CHECK(value(EGL_DMA_BUF_PLANE0_FD_EXT) == 42);
  CHECK(value(EGL_DMA_BUF_PLANE0_PITCH_EXT) == 7680);
  CHECK(value(EGL_DMA_BUF_PLANE0_OFFSET_EXT) == 0);
  CHECK(uint32_t(value(EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT)) == uint32_t(I915_FORMAT_MOD_Y_TILED_CCS & 0xffffffffu));
  CHECK(uint32_t(value(EGL_DMA_BUF_PLANE0_MODIFIER_HI_EXT)) == uint32_t(I915_FORMAT_MOD_Y_TILED_CCS >> 32));

  // Two planes in two objects; no modifier attributes when the modifier is unknown (implicit).
  layout.drm_fourcc = DRM_FORMAT_NV12;
  layout.object_count = 2;
  layout.objects[0] = {10, 2'073'600, DRM_FORMAT_MOD_INVALID};
  layout.objects[1] = {11, 1'036'800, DRM_FORMAT_MOD_INVALID};
  layout.plane_count = 2;
  layout.planes[0] = {0, 0, 1920};
  layout.planes[1] = {1, 0, 1920};
  a = encode::egl_dmabuf_attributes(layout);
  CHECK(a.size() == 6 + 6 + 6 + 1);
  CHECK(value(EGL_DMA_BUF_PLANE1_FD_EXT) == 11);
  CHECK(value(EGL_DMA_BUF_PLANE0_MODIFIER_LO_EXT) == -1);
}
