#include <catch2/catch.hpp>

#include <drm_fourcc.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "encode/vaapi/drm_prime.hpp"
#include "encode/vaapi/va_display.hpp"
#include "encode/vaapi/va_prime.hpp"
#include "encode/vaapi/vaapi_encoder.hpp"
#include "fixtures/process.hpp"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/dict.h>
#include <libavutil/opt.h>
}

using namespace vdistream;

namespace {

core::UniqueFd memfd_of(uint64_t size) {
  core::UniqueFd fd(memfd_create("test-dmabuf", MFD_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(ftruncate(fd.get(), off_t(size)) == 0);
  return fd;
}

core::FrameBufferPtr xrgb_buffer(int32_t w, int32_t h, uint32_t pitch, uint64_t modifier) {
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  planes[0] = core::Plane{memfd_of(uint64_t(pitch) * uint64_t(h)), 0, pitch};
  auto fb = core::FrameBuffer::create(w, h, core::PixelFormat{DRM_FORMAT_XRGB8888, modifier}, std::move(planes), 1);
  REQUIRE(fb.ok());
  return *fb;
}

// NV12 with its chroma plane in the same file (shared) or in a second one.
core::FrameBufferPtr nv12_buffer(int32_t w, int32_t h, bool shared, uint64_t modifier) {
  const uint32_t pitch = uint32_t(w);
  const uint32_t luma = pitch * uint32_t(h);
  std::array<core::Plane, core::FrameBuffer::kMaxPlanes> planes;
  if (shared) {
    core::UniqueFd fd = memfd_of(luma + luma / 2);
    core::UniqueFd dup_fd(dup(fd.get()));
    planes[0] = core::Plane{std::move(fd), 0, pitch};
    planes[1] = core::Plane{std::move(dup_fd), luma, pitch};
  } else {
    planes[0] = core::Plane{memfd_of(luma), 0, pitch};
    planes[1] = core::Plane{memfd_of(luma / 2), 0, pitch};
  }
  auto fb = core::FrameBuffer::create(w, h, core::PixelFormat{DRM_FORMAT_NV12, modifier}, std::move(planes), 2);
  REQUIRE(fb.ok());
  return *fb;
}

}  // namespace

TEST_CASE("a one-plane tiled XRGB buffer becomes one DRM object and one layer", "[encode][vaapi]") {
  auto fb = xrgb_buffer(1920, 1080, 7680, I915_FORMAT_MOD_X_TILED);
  auto d = encode::drm_frame_descriptor(*fb);
  REQUIRE(d.ok());
  REQUIRE(d->nb_objects == 1);
  CHECK(d->objects[0].fd == fb->plane(0).fd.get());
  CHECK(d->objects[0].size == size_t(7680) * 1080);
  CHECK(d->objects[0].format_modifier == I915_FORMAT_MOD_X_TILED);
  REQUIRE(d->nb_layers == 1);
  CHECK(d->layers[0].format == DRM_FORMAT_XRGB8888);
  REQUIRE(d->layers[0].nb_planes == 1);
  CHECK(d->layers[0].planes[0].object_index == 0);
  CHECK(d->layers[0].planes[0].offset == 0);
  CHECK(d->layers[0].planes[0].pitch == 7680);
}

TEST_CASE("NV12 planes in one file share one DRM object, in two files they get two", "[encode][vaapi]") {
  SECTION("shared file, chroma after luma") {
    auto fb = nv12_buffer(640, 480, true, DRM_FORMAT_MOD_LINEAR);
    auto d = encode::drm_frame_descriptor(*fb);
    REQUIRE(d.ok());
    REQUIRE(d->nb_objects == 1);
    CHECK(d->objects[0].size == size_t(640) * 480 * 3 / 2);
    CHECK(d->objects[0].format_modifier == DRM_FORMAT_MOD_LINEAR);
    REQUIRE(d->nb_layers == 1);
    CHECK(d->layers[0].format == DRM_FORMAT_NV12);
    REQUIRE(d->layers[0].nb_planes == 2);
    CHECK(d->layers[0].planes[1].object_index == 0);
    CHECK(d->layers[0].planes[1].offset == 640 * 480);
    CHECK(d->layers[0].planes[1].pitch == 640);
  }
  SECTION("two files") {
    auto fb = nv12_buffer(640, 480, false, I915_FORMAT_MOD_Y_TILED);
    auto d = encode::drm_frame_descriptor(*fb);
    REQUIRE(d.ok());
    REQUIRE(d->nb_objects == 2);
    CHECK(d->objects[0].fd == fb->plane(0).fd.get());
    CHECK(d->objects[1].fd == fb->plane(1).fd.get());
    CHECK(d->objects[1].size == size_t(640) * 480 / 2);
    CHECK(d->objects[1].format_modifier == I915_FORMAT_MOD_Y_TILED);
    CHECK(d->layers[0].planes[0].object_index == 0);
    CHECK(d->layers[0].planes[1].object_index == 1);
    CHECK(d->layers[0].planes[1].offset == 0);
  }
}

TEST_CASE("the VA PRIME_2 descriptor names VA's fourcc and every object, plane and modifier", "[encode][vaapi]") {
  SECTION("XRGB8888 is BGRX in VA's byte order, an RGB32 surface") {
    auto fb = xrgb_buffer(1280, 720, 5120, I915_FORMAT_MOD_Y_TILED);
    auto layout = encode::describe_dmabuf(*fb);
    REQUIRE(layout.ok());
    auto d = encode::va_prime_descriptor(*layout);
    REQUIRE(d.ok());
    CHECK(d->fourcc == VA_FOURCC_BGRX);
    CHECK(d->width == 1280);
    CHECK(d->height == 720);
    REQUIRE(d->num_objects == 1);
    CHECK(d->objects[0].fd == fb->plane(0).fd.get());
    CHECK(d->objects[0].size == 5120u * 720u);
    CHECK(d->objects[0].drm_format_modifier == I915_FORMAT_MOD_Y_TILED);
    REQUIRE(d->num_layers == 1);
    CHECK(d->layers[0].drm_format == DRM_FORMAT_XRGB8888);
    CHECK(d->layers[0].num_planes == 1);
    CHECK(d->layers[0].pitch[0] == 5120);
    auto f = encode::va_surface_format(DRM_FORMAT_XRGB8888);
    REQUIRE(f.ok());
    CHECK(f->rt_format == VA_RT_FORMAT_RGB32);
  }
  SECTION("NV12 in two files: two objects, a YUV420 surface") {
    auto fb = nv12_buffer(320, 240, false, DRM_FORMAT_MOD_LINEAR);
    auto layout = encode::describe_dmabuf(*fb);
    REQUIRE(layout.ok());
    auto d = encode::va_prime_descriptor(*layout);
    REQUIRE(d.ok());
    CHECK(d->fourcc == VA_FOURCC_NV12);
    CHECK(d->num_objects == 2);
    CHECK(d->layers[0].num_planes == 2);
    CHECK(d->layers[0].object_index[1] == 1);
    CHECK(encode::va_surface_format(DRM_FORMAT_NV12)->rt_format == VA_RT_FORMAT_YUV420);
  }
  SECTION("the other RGB orders and an unknown format") {
    CHECK(encode::va_surface_format(DRM_FORMAT_ABGR8888)->va_fourcc == VA_FOURCC_RGBA);
    CHECK(encode::va_surface_format(DRM_FORMAT_ARGB8888)->va_fourcc == VA_FOURCC_BGRA);
    encode::DmaBufLayout layout;
    layout.drm_fourcc = DRM_FORMAT_RGB565;
    auto d = encode::va_prime_descriptor(layout);
    REQUIRE_FALSE(d.ok());
    CHECK_THAT(d.error(), Catch::Contains("no VA surface format"));
  }
}

TEST_CASE("h264_vaapi is opened for CBR with a one-frame buffer, no B-frames and async depth 1", "[encode][vaapi]") {
  encode::EncoderConfig c;
  c.bitrate_bps = 6'000'000;
  c.fps = 60;
  auto s = encode::vaapi_settings(c, true);
  CHECK(s.codec == "h264_vaapi");
  CHECK(s.max_b_frames == 0);
  CHECK(s.bit_rate == 6'000'000);
  CHECK(s.rc_max_rate == 6'000'000);
  CHECK(s.rc_buffer_size == 100'000);
  CHECK(s.profile == FF_PROFILE_H264_CONSTRAINED_BASELINE);
  auto dict = encode::options_dictionary(s);
  auto value = [&](const char* key) {
    AVDictionaryEntry* e = av_dict_get(dict.get(), key, nullptr, 0);
    return std::string(e ? e->value : "<absent>");
  };
  CHECK(value("rc_mode") == "CBR");
  CHECK(value("async_depth") == "1");
  CHECK(value("low_power") == "1");
  CHECK(value("idr_interval") == "0");

  c.codec = core::Codec::H265;
  auto hevc = encode::vaapi_settings(c, false);
  CHECK(hevc.codec == "hevc_vaapi");
  CHECK(hevc.option("low_power") == nullptr);  // the driver has no low-power entrypoint
  CHECK(hevc.profile == FF_PROFILE_HEVC_MAIN);
}

TEST_CASE("the render node comes from configuration or the first renderD* in the DRI folder", "[encode][vaapi]") {
  test::TempDir dir;
  const std::string dri = dir.path() + "/dri";
  auto missing = encode::find_render_node("", dri);
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error(), Catch::Contains("does not exist"));

  std::filesystem::create_directory(dri);
  std::ofstream(dri + "/card0").put('x');
  auto empty = encode::find_render_node("", dri);
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error() == "no render node in " + dri);

  std::ofstream(dri + "/renderD129").put('x');
  std::ofstream(dri + "/renderD128").put('x');
  auto found = encode::find_render_node("", dri);
  REQUIRE(found.ok());
  CHECK(*found == dri + "/renderD128");

  auto configured = encode::find_render_node(dri + "/renderD129", dri);
  REQUIRE(configured.ok());
  CHECK(*configured == dri + "/renderD129");
  auto wrong = encode::find_render_node(dri + "/renderD200", dri);
  REQUIRE_FALSE(wrong.ok());
  CHECK_THAT(wrong.error(), Catch::Contains("renderD200"));
}

TEST_CASE("without a render node the VAAPI backend refuses to open and says why", "[encode][vaapi]") {
  encode::HardwareOptions hw;
  auto e = encode::VaapiEncoder::create(encode::EncoderConfig{}, hw);
  if (std::filesystem::exists("/dev/dri")) {
    SUCCEED("this host has /dev/dri: the outcome depends on its GPU");
    return;
  }
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.error(), Catch::Contains("no render node") && Catch::Contains("/dev/dri"));
}

TEST_CASE("the VAAPI options are ones this FFmpeg's h264_vaapi and hevc_vaapi know", "[encode][vaapi]") {
  encode::EncoderConfig c;
  c.access_unit_delimiters = true;
  for (core::Codec codec : {core::Codec::H264, core::Codec::H265}) {
    c.codec = codec;
    auto s = encode::vaapi_settings(c, true);
    const AVCodec* avcodec = avcodec_find_encoder_by_name(s.codec.c_str());
    if (!avcodec) continue;  // an FFmpeg built without VAAPI
    REQUIRE(avcodec->priv_class != nullptr);
  const AVClass* cls = avcodec->priv_class;  // av_opt_find takes a pointer to an AVClass pointer
    for (const auto& [key, value] : s.options) {
      INFO(s.codec << " " << key);
      CHECK(av_opt_find(&cls, key.c_str(), nullptr, 0, AV_OPT_SEARCH_FAKE_OBJ) != nullptr);
    }
  }
}
