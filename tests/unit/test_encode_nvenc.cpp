#include <catch2/catch.hpp>

#include <dlfcn.h>

#include "encode/nvenc/cuda_runtime.hpp"
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
